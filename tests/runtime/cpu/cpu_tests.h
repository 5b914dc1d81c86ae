/* cpu_tests.h — the test functions, one per entry of cpu_tests.def. */
#ifndef PML_CPU_TESTS_H
#define PML_CPU_TESTS_H
#define CPU_TEST(name) void test_##name(void);
#include "cpu_tests.def"
#undef CPU_TEST
#endif
