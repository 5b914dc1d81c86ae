/* test_bounds.c — pml_first_outside_*: the first value outside [0, limit) is found in
 * any block (the first, a block's last and first element, the array's last), negative
 * values count as outside, and an array with none gives n. */
#include <stdint.h>
#include <stdlib.h>

#include "data/bounds.h"
#include "data_test.h"

enum { N = 3 * 4096 + 17 };

static void finds_the_first_value_outside_in_any_block(void)
{
    static int64_t v64[N];
    static int32_t v32[N];
    static uint16_t v16[N];
    static uint8_t v8[N];
    for (size_t i = 0; i < N; i++) v64[i] = v32[i] = v16[i] = v8[i] = (uint8_t)(i % 10);
    CHECK(pml_first_outside_i64(v64, N, 10) == N && pml_first_outside_i32(v32, N, 10) == N);
    CHECK(pml_first_outside_u16(v16, N, 10) == N && pml_first_outside_u8(v8, N, 10) == N);
    CHECK(pml_first_outside_u8(v8, N, 9) == 9); /* 9 is outside [0, 9) */
    const size_t at[] = {0, 4095, 4096, 8191, 2 * 4096 + 5, N - 1};
    for (size_t k = 0; k < sizeof at / sizeof *at; k++) {
        size_t i = at[k];
        v64[i] = 10, v32[i] = -1, v16[i] = 65535, v8[i] = 200;
        CHECK(pml_first_outside_i64(v64, N, 10) == i);
        CHECK(pml_first_outside_i32(v32, N, 10) == i);
        CHECK(pml_first_outside_u16(v16, N, 10) == i);
        CHECK(pml_first_outside_u8(v8, N, 10) == i);
        v64[i] = INT64_MIN; /* wraps to 2^63 as unsigned: outside */
        CHECK(pml_first_outside_i64(v64, N, 10) == i);
        v64[i] = v32[i] = v16[i] = v8[i] = 0;
    }
    CHECK(pml_first_outside_i64(v64, 0, 10) == 0);
}

int main(int argc, char **argv)
{
    static const data_test tests[] = {
        {"finds_the_first_value_outside_in_any_block", finds_the_first_value_outside_in_any_block},
    };
    return data_test_main(argc, argv, tests, (int)(sizeof tests / sizeof *tests));
}
