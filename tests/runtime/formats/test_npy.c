/* test_npy.c — .npy reading, writing and refusing (runtime/src/formats/npy.h). */
#include "formats/npy.h"
#include "harness.h"

/* Writes magic, version, header length, `dict` + '\n' and `data` bytes of a pattern. */
static void write_npy(const char *path, int major, const char *dict, size_t data)
{
    size_t hn = strlen(dict) + 1, pre = major == 1 ? 10 : 12;
    unsigned char *b = calloc(1, pre + hn + data);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)major;
    for (size_t i = 0; i < pre - 8; i++) b[8 + i] = (unsigned char)(hn >> (8 * i));
    memcpy(b + pre, dict, hn - 1);
    b[pre + hn - 1] = '\n';
    for (size_t i = 0; i < data; i++) b[pre + hn + i] = (unsigned char)i;
    CHECK(write_bytes(path, b, pre + hn + data) == 0);
    free(b);
}

static void refused(int major, const char *dict, size_t data, pml_status code, const char *part)
{
    write_npy("h.npy", major, dict, data);
    pml_npy_array a;
    pml_err err = {0};
    CHECK_ERR(pml_npy_open("h.npy", &a, &err), err, code, part);
    CHECK(strncmp(err.msg, "h.npy: ", 7) == 0 && a.data == NULL);
    pml_npy_close(&a);
}

static void npy_write_then_read_gives_every_dtype_back(void)
{
    const pml_dtype types[] = {PML_F32, PML_F64, PML_I32, PML_I64, PML_U8};
    const int64_t shape[] = {3, 4};
    unsigned char data[12 * 8];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (unsigned char)(i * 13 + 1);
    for (size_t k = 0; k < sizeof types / sizeof *types; k++) {
        pml_err err = {0};
        CHECK(pml_npy_write("a.npy", types[k], 2, shape, data, &err) == PML_OK);
        pml_npy_array a;
        CHECK(pml_npy_open("a.npy", &a, &err) == PML_OK);
        CHECK(a.dtype == types[k] && a.rank == 2 && a.shape[0] == 3 && a.shape[1] == 4);
        CHECK(a.nbytes == 12 * pml_dtype_size(types[k]) && memcmp(a.data, data, a.nbytes) == 0);
        pml_npy_close(&a);
        pml_npy_close(&a); /* harmless twice */
    }
}

static void npy_writer_lays_out_the_header_as_numpy_does(void)
{
    const int64_t shape[] = {3, 4};
    float x[12] = {0};
    pml_err err = {0};
    CHECK(pml_npy_write("l.npy", PML_F32, 2, shape, x, &err) == PML_OK);
    size_t n = 0;
    unsigned char *b = read_bytes("l.npy", &n);
    const char dict[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }";
    CHECK(b && n == 128 + 48 && memcmp(b, "\x93NUMPY\x01\x00\x76\x00", 10) == 0);
    CHECK(b && memcmp(b + 10, dict, sizeof dict - 1) == 0 && b[127] == '\n');
    for (size_t i = 10 + sizeof dict - 1; b && i < 127; i++) CHECK(b[i] == ' ');
    free(b);

    const int64_t one[] = {7};
    CHECK(pml_npy_write("v.npy", PML_U8, 1, one, "abcdefg", &err) == PML_OK);
    b = read_bytes("v.npy", &n);
    CHECK(b && n == 128 + 7 && strstr((char *)b + 10, "'descr': '|u1'") && strstr((char *)b + 10, "'shape': (7,), }"));
    free(b);
}

static void npy_scalars_and_empty_arrays_round_trip(void)
{
    double s = 2.5;
    pml_err err = {0};
    pml_npy_array a;
    CHECK(pml_npy_write("s.npy", PML_F64, 0, NULL, &s, &err) == PML_OK);
    CHECK(pml_npy_open("s.npy", &a, &err) == PML_OK && a.rank == 0 && a.nbytes == 8 && *(const double *)a.data == 2.5);
    pml_npy_close(&a);
    const int64_t empty[] = {4, 0, 2};
    CHECK(pml_npy_write("e.npy", PML_I32, 3, empty, NULL, &err) == PML_OK);
    CHECK(pml_npy_open("e.npy", &a, &err) == PML_OK && a.rank == 3 && a.shape[1] == 0 && a.nbytes == 0 && a.data);
    pml_npy_close(&a);
}

static void npy_reads_versions_2_and_3_and_python2_headers(void)
{
    pml_err err = {0};
    pml_npy_array a;
    const char *dicts[] = {"{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }",
                           "{\"shape\":(2,),\"descr\":\"<i8\",\"fortran_order\":False}",
                           "{'descr': '<i8', 'fortran_order': False, 'shape': (2L,), }   "};
    for (int major = 1; major <= 3; major++) {
        write_npy("v.npy", major, dicts[major - 1], 16);
        CHECK(pml_npy_open("v.npy", &a, &err) == PML_OK);
        CHECK(a.dtype == PML_I64 && a.rank == 1 && a.shape[0] == 2 && a.nbytes == 16);
        CHECK(a.data && ((const unsigned char *)a.data)[15] == 15);
        CHECK(((uintptr_t)a.data) % 8 == 0); /* unaligned in the file (offset 68 or 70): copied */
        pml_npy_close(&a);
    }
}

static void npy_misaligned_data_is_copied(void)
{
    const int64_t shape[] = {5};
    double x[5] = {1, 2, 3, 4, 5};
    pml_err err = {0};
    CHECK(pml_npy_write("m.npy", PML_F64, 1, shape, x, &err) == PML_OK);
    size_t n = 0;
    unsigned char *b = read_bytes("m.npy", &n), *shifted = malloc(n + 1);
    memcpy(shifted + 1, b, n);
    pml_npy_array a;
    CHECK(pml_npy_open_memory(shifted + 1, n, "m.npy", &a, &err) == PML_OK);
    CHECK(a.data != shifted + 1 + 64 && (uintptr_t)a.data % 8 == 0 && memcmp(a.data, x, sizeof x) == 0);
    pml_npy_close(&a);
    CHECK(pml_npy_open_memory(b, n, "m.npy", &a, &err) == PML_OK && a.data == b + n - sizeof x); /* aligned: no copy */
    pml_npy_close(&a);
    free(b);
    free(shifted);
}

static void npy_refuses_bad_magic(void)
{
    pml_npy_array a;
    pml_err err = {0};
    CHECK(write_bytes("h.npy", "\x93NUMPZ\x01\x00\x00\x00", 10) == 0);
    CHECK_ERR(pml_npy_open("h.npy", &a, &err), err, PML_ERR_FORMAT, "h.npy: not a .npy file");
    CHECK(write_bytes("h.npy", "", 0) == 0);
    CHECK_ERR(pml_npy_open("h.npy", &a, &err), err, PML_ERR_FORMAT, "h.npy: not a .npy file");
    CHECK(write_bytes("h.npy", "\x93NUMPY\x02\x00\x00\x00", 10) == 0);
    CHECK_ERR(pml_npy_open("h.npy", &a, &err), err, PML_ERR_FORMAT, "h.npy: file ends inside the header length");
    CHECK_ERR(pml_npy_open("absent.npy", &a, &err), err, PML_ERR_IO, "absent.npy: cannot open");
}

/* input_file.h's policy, as every reader of a user's file meets it: a fifo nobody
 * writes to is refused at once (a blocking open would wait forever), and so is a folder. */
static void npy_a_fifo_or_folder_is_refused_before_it_is_read(void)
{
    pml_npy_array a;
    pml_err err = {0};
    CHECK(mkfifo("fifo.npy", 0600) == 0);
    CHECK_ERR(pml_npy_open("fifo.npy", &a, &err), err, PML_ERR_IO, "fifo.npy: is a fifo, not a regular file");
    CHECK(mkdir("dir.npy", 0700) == 0);
    CHECK_ERR(pml_npy_open("dir.npy", &a, &err), err, PML_ERR_IO, "dir.npy: is a folder, not a file");
}

static void npy_refuses_unsupported_versions(void)
{
    refused(4, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 4, PML_ERR_UNSUPPORTED,
            "h.npy: .npy version 4.0 is not supported");
    refused(0, "{}", 0, PML_ERR_UNSUPPORTED, "version 0.0");
}

static void npy_refuses_fortran_order(void)
{
    refused(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16, PML_ERR_UNSUPPORTED,
            "h.npy: Fortran-order arrays are not supported; save with np.ascontiguousarray");
}

static void npy_refuses_big_endian(void)
{
    refused(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", 4, PML_ERR_UNSUPPORTED,
            "h.npy: big-endian arrays ('>f4') are not supported");
}

static void npy_refuses_unsupported_dtypes(void)
{
    refused(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", 8, PML_ERR_UNSUPPORTED,
            "h.npy: dtype '<c8' is not supported");
    refused(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (1,), }", 2, PML_ERR_UNSUPPORTED, "dtype '<f2'");
    refused(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (1,), }", 1, PML_ERR_UNSUPPORTED, "dtype '|b1'");
    refused(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", 4, PML_ERR_UNSUPPORTED,
            "structured arrays");
}

static void npy_refuses_malformed_dicts(void)
{
    const char *bad[][2] = {
        {"", "expected '{'"},
        {"{'descr': '<f4', 'fortran_order': False, }", "the header has no 'shape'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1, }", "unexpected key 'extra'"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", "key 'descr' appears twice"},
        {"{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }", "fortran_order must be True or False"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1), }", "'(n)' is not a tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': [1], }", "expected '(' starting the shape tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", "expected a non-negative integer"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (01,), }", "leading zero"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,,), }", "expected a non-negative integer"},
        {"{'descr': '<f4' 'fortran_order': False, 'shape': (1,), }", "expected ',' or '}'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } x", "unexpected text after the header dict"},
        {"{'descr': '<f\\x34', 'fortran_order': False, 'shape': (1,), }", "unexpected string contents"},
        {"{'descr: '<f4', 'fortran_order': False, 'shape': (1,), }", "expected ':'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,)", "expected ',' or '}'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,2,3,4,5,6,7,8,9), }", "more than 8 dimensions"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        refused(1, bad[i][0], 4, strstr(bad[i][1], "dimensions") ? PML_ERR_UNSUPPORTED : PML_ERR_FORMAT, bad[i][1]);
    /* a header length past the end of the file */
    CHECK(write_bytes("h.npy", "\x93NUMPY\x01\x00\xff\x00{}", 12) == 0);
    pml_npy_array a;
    pml_err err = {0};
    CHECK_ERR(pml_npy_open("h.npy", &a, &err), err, PML_ERR_FORMAT, "header length 255 exceeds the 2 bytes");
}

static void npy_refuses_shape_overflow(void)
{
    refused(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 8, PML_ERR_FORMAT,
            "h.npy: the shape has more bytes than a 64-bit size can count");
    refused(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,), }", 8, PML_ERR_FORMAT,
            "shape dimension does not fit in 64 bits");
    refused(1, "{'descr': '<u1', 'fortran_order': False, 'shape': (9223372036854775807, 3), }", 8, PML_ERR_FORMAT,
            "more bytes than a 64-bit size can count");
}

static void npy_refuses_truncated_data(void)
{
    refused(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", 47, PML_ERR_FORMAT,
            "h.npy: the data is 47 bytes but the shape needs 48 (truncated)");
    refused(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 0, PML_ERR_FORMAT, "data is 0 bytes");
}

static void npy_refuses_trailing_data(void)
{
    refused(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", 49, PML_ERR_FORMAT,
            "h.npy: the data is 49 bytes but the shape needs 48 (trailing bytes)");
    refused(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0,), }", 1, PML_ERR_FORMAT, "trailing bytes");
}

static void npy_writer_refuses_what_numpy_cannot_read_back(void)
{
    pml_err err = {0};
    const int64_t shape[] = {2}, neg[] = {-2};
    CHECK_ERR(pml_npy_write("w.npy", PML_BF16, 1, shape, "abcd", &err), err, PML_ERR_UNSUPPORTED,
              "w.npy: .npy files of bf16 are not supported");
    CHECK_ERR(pml_npy_write("w.npy", PML_U8, 1, neg, "ab", &err), err, PML_ERR_INVALID_ARG, "dimension 0 is -2");
    CHECK_ERR(pml_npy_write("w.npy", PML_U8, 9, shape, "ab", &err), err, PML_ERR_INVALID_ARG, "rank 9");
    CHECK_ERR(pml_npy_write("no/such/w.npy", PML_U8, 1, shape, "ab", &err), err, PML_ERR_IO, "no/such/w.npy");
    CHECK(!file_exists("w.npy"));
}

#define T(fn)   \
    {           \
#fn, fn \
    }
static const test_case cases[] = {
    T(npy_write_then_read_gives_every_dtype_back),
    T(npy_writer_lays_out_the_header_as_numpy_does),
    T(npy_scalars_and_empty_arrays_round_trip),
    T(npy_reads_versions_2_and_3_and_python2_headers),
    T(npy_misaligned_data_is_copied),
    T(npy_refuses_bad_magic),
    T(npy_a_fifo_or_folder_is_refused_before_it_is_read),
    T(npy_refuses_unsupported_versions),
    T(npy_refuses_fortran_order),
    T(npy_refuses_big_endian),
    T(npy_refuses_unsupported_dtypes),
    T(npy_refuses_malformed_dicts),
    T(npy_refuses_shape_overflow),
    T(npy_refuses_truncated_data),
    T(npy_refuses_trailing_data),
    T(npy_writer_refuses_what_numpy_cannot_read_back),
};

int main(int argc, char **argv) { return test_main(argc, argv, cases, sizeof cases / sizeof *cases); }
