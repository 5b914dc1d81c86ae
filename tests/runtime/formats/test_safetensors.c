/* test_safetensors.c — safetensors reading, writing and refusing hostile files
 * (runtime/src/formats/safetensors.h), and atomic replacement (atomic_file.h). */
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "formats/atomic_file.h"
#include "formats/out_path.h"
#include "formats/safetensors.h"
#include "harness.h"
#include "pml.h"

/* GCC 12 at -O3 (Release) clones make() for the callers' small buffers without
 * seeing that n fits them, and -Werror would stop the build: a false positive. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#endif

/* A tensor of `dtype` and shape whose bytes are a pattern of `seed`, in `buf`. */
static pml_st_tensor make(const char *name, pml_dtype dtype, int rank, const int64_t *shape, unsigned char *buf,
                          unsigned seed)
{
    pml_st_tensor t = {.name = name, .dtype = dtype, .rank = rank, .data = buf};
    size_t n = pml_dtype_size(dtype);
    for (int i = 0; i < rank; i++) {
        t.shape[i] = shape[i];
        n *= (size_t)shape[i];
    }
    for (size_t i = 0; i < n; i++) buf[i] = (unsigned char)(seed * 31 + i * 7);
    t.nbytes = n;
    return t;
}

/* The file holds exactly these tensors (any order in `want`). */
static void check_same(const pml_st_file *f, const pml_st_tensor *want, size_t n)
{
    CHECK(pml_st_count(f) == n);
    for (size_t i = 0; i < n; i++) {
        const pml_st_tensor *t = pml_st_find(f, want[i].name);
        CHECK(t != NULL);
        if (!t) continue;
        CHECK(strcmp(t->name, want[i].name) == 0 && t->dtype == want[i].dtype && t->rank == want[i].rank);
        CHECK(memcmp(t->shape, want[i].shape, sizeof(int64_t) * (size_t)want[i].rank) == 0);
        CHECK(t->nbytes == want[i].nbytes && t->data && memcmp(t->data, want[i].data, t->nbytes) == 0);
    }
}

static void st_write_then_read_gives_every_dtype_back(void)
{
    static unsigned char bufs[PML_DTYPE_COUNT][6 * 8];
    pml_st_tensor ts[PML_DTYPE_COUNT];
    const int64_t shape[] = {2, 3};
    static const char *const names[] = {"f32", "bf16", "f16", "i32", "f64", "i64", "u8", "i8"};
    for (int d = 0; d < PML_DTYPE_COUNT; d++) ts[d] = make(names[d], (pml_dtype)d, 2, shape, bufs[d], (unsigned)d);
    pml_err err = {0};
    CHECK(pml_st_write("all.safetensors", ts, PML_DTYPE_COUNT, NULL, 0, &err) == PML_OK);
    pml_st_file *f = NULL;
    CHECK(pml_st_open("all.safetensors", &f, &err) == PML_OK);
    if (f) check_same(f, ts, PML_DTYPE_COUNT);
    for (size_t i = 0; f && i + 1 < pml_st_count(f); i++) /* data order is name order */
        CHECK(strcmp(pml_st_tensor_at(f, i)->name, pml_st_tensor_at(f, i + 1)->name) < 0);
    pml_st_close(f);
}

static void st_scalars_and_empty_tensors_round_trip(void)
{
    static unsigned char a[8], b[8], c[8];
    const int64_t zero[] = {0}, empty2[] = {3, 0}, one[] = {1};
    pml_st_tensor ts[] = {make("scalar", PML_F64, 0, NULL, a, 1), make("empty", PML_F32, 1, zero, b, 2),
                          make("empty2", PML_I64, 2, empty2, c, 3), make("one", PML_U8, 1, one, c, 4)};
    pml_err err = {0};
    CHECK(pml_st_write("edge.safetensors", ts, 4, NULL, 0, &err) == PML_OK);
    pml_st_file *f = NULL;
    CHECK(pml_st_open("edge.safetensors", &f, &err) == PML_OK);
    if (f) {
        check_same(f, ts, 4);
        CHECK(pml_st_find(f, "scalar")->rank == 0 && pml_st_find(f, "scalar")->nbytes == 8);
        CHECK(pml_st_find(f, "empty")->nbytes == 0 && pml_st_find(f, "empty")->data != NULL);
    }
    pml_st_close(f);
    CHECK(pml_st_write("none.safetensors", NULL, 0, NULL, 0, &err) == PML_OK);
    CHECK(pml_st_open("none.safetensors", &f, &err) == PML_OK && pml_st_count(f) == 0);
    pml_st_close(f);
}

static void st_many_tensors_round_trip(void)
{
    enum { N = 2000 };
    static unsigned char data[N][12];
    static char names[N][16];
    static pml_st_tensor ts[N];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "layer%d.w", (i * 7919) % N);
        const int64_t shape[] = {i % 4};
        ts[i] = make(names[i], i % 2 ? PML_I32 : PML_F16, 1, shape, data[i], (unsigned)i);
    }
    pml_err err = {0};
    CHECK(pml_st_write("many.safetensors", ts, N, NULL, 0, &err) == PML_OK);
    pml_st_file *f = NULL;
    CHECK(pml_st_open("many.safetensors", &f, &err) == PML_OK);
    if (f) check_same(f, ts, N);
    CHECK(f && pml_st_find(f, "layer0.x") == NULL && pml_st_find(f, "") == NULL);
    pml_st_close(f);
}

static void st_metadata_round_trips(void)
{
    const pml_st_meta meta[] = {
        {"format", "pt"}, {"step", "1200"}, {"note", "quote \" slash \\ newline \n caf\xc3\xa9"}, {"empty", ""}};
    static unsigned char buf[4];
    const int64_t one[] = {1};
    pml_st_tensor t = make("w", PML_F32, 1, one, buf, 0);
    pml_err err = {0};
    CHECK(pml_st_write("meta.safetensors", &t, 1, meta, 4, &err) == PML_OK);
    pml_st_file *f = NULL;
    CHECK(pml_st_open("meta.safetensors", &f, &err) == PML_OK);
    if (!f) return;
    CHECK(pml_st_metadata_count(f) == 4);
    for (int i = 0; i < 4; i++) CHECK(strcmp(pml_st_metadata(f, meta[i].key), meta[i].value) == 0);
    CHECK(pml_st_metadata(f, "absent") == NULL);
    CHECK(strcmp(pml_st_metadata_at(f, 0)->key, "empty") == 0); /* sorted by key */
    pml_st_close(f);
}

static void st_writer_output_is_deterministic_and_padded(void)
{
    static unsigned char a[16], b[16];
    const int64_t s2[] = {2, 2};
    pml_st_tensor fwd[] = {make("b", PML_F32, 2, s2, a, 1), make("a", PML_I32, 2, s2, b, 2)};
    pml_st_tensor rev[] = {fwd[1], fwd[0]};
    const pml_st_meta meta[] = {{"z", "1"}, {"a", "2"}}, meta_rev[] = {{"a", "2"}, {"z", "1"}};
    pml_err err = {0};
    CHECK(pml_st_write("x1.safetensors", fwd, 2, meta, 2, &err) == PML_OK);
    CHECK(pml_st_write("x2.safetensors", rev, 2, meta_rev, 2, &err) == PML_OK);
    size_t n1 = 0, n2 = 0;
    unsigned char *f1 = read_bytes("x1.safetensors", &n1), *f2 = read_bytes("x2.safetensors", &n2);
    CHECK(f1 && f2 && n1 == n2 && memcmp(f1, f2, n1) == 0);
    if (f1 && n1 > 8) {
        uint64_t h = 0;
        for (int i = 7; i >= 0; i--) h = h << 8 | f1[i];
        const char want[] = "{\"__metadata__\":{\"a\":\"2\",\"z\":\"1\"},"
                            "\"a\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                            "\"b\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[16,32]}}";
        CHECK(h % 8 == 0 && h >= sizeof want - 1 && h < sizeof want - 1 + 8 && n1 == 8 + h + 32);
        CHECK(memcmp(f1 + 8, want, sizeof want - 1) == 0);
        for (size_t i = 8 + sizeof want - 1; i < 8 + h; i++) CHECK(f1[i] == ' ');
        CHECK(memcmp(f1 + 8 + h, b, 16) == 0 && memcmp(f1 + 8 + h + 16, a, 16) == 0);
    }
    free(f1);
    free(f2);
}

static void st_writer_refuses_bad_input(void)
{
    static unsigned char a[16];
    const int64_t s[] = {2}, neg[] = {-1};
    pml_st_tensor ok = make("w", PML_F32, 1, s, a, 0), t[2] = {ok, ok};
    const pml_st_meta dup[] = {{"k", "1"}, {"k", "2"}};
    pml_err err = {0};
    CHECK_ERR(pml_st_write("bad.safetensors", t, 2, NULL, 0, &err), err, PML_ERR_INVALID_ARG, "given twice");
    CHECK_ERR(pml_st_write("bad.safetensors", &ok, 1, dup, 2, &err), err, PML_ERR_INVALID_ARG, "given twice");
    t[0].name = "";
    CHECK_ERR(pml_st_write("bad.safetensors", t, 1, NULL, 0, &err), err, PML_ERR_INVALID_ARG, "empty name");
    t[0].name = "__metadata__";
    CHECK_ERR(pml_st_write("bad.safetensors", t, 1, NULL, 0, &err), err, PML_ERR_INVALID_ARG, "reserved");
    t[0].name = "bad\xff";
    CHECK_ERR(pml_st_write("bad.safetensors", t, 1, NULL, 0, &err), err, PML_ERR_INVALID_ARG, "UTF-8");
    t[0] = ok;
    t[0].nbytes = 12;
    CHECK_ERR(pml_st_write("bad.safetensors", t, 1, NULL, 0, &err), err, PML_ERR_INVALID_ARG, "nbytes is 12");
    t[0] = make("n", PML_F32, 1, s, a, 0);
    t[0].shape[0] = neg[0];
    CHECK_ERR(pml_st_write("bad.safetensors", t, 1, NULL, 0, &err), err, PML_ERR_INVALID_ARG, "dimension 0 is -1");
    CHECK(!file_exists("bad.safetensors"));
}

/* ---- hostile files ----------------------------------------------------------------- */

/* A file of an 8-byte length `hlen`, the header text, and `data` zero bytes. */
static void write_st(const char *path, uint64_t hlen, const char *header, size_t data)
{
    size_t n = strlen(header);
    unsigned char *b = calloc(1, 8 + n + data);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(hlen >> (8 * i));
    memcpy(b + 8, header, n);
    CHECK(write_bytes(path, b, 8 + n + data) == 0);
    free(b);
}

/* `header` (with its true length) and `data` bytes is refused, from a file and from
 * memory, with PML_ERR_FORMAT and a message holding the path and `part`. */
static void hostile(const char *header, size_t data, const char *part)
{
    write_st("h.safetensors", strlen(header), header, data);
    pml_st_file *f = (pml_st_file *)1;
    pml_err err = {0};
    CHECK_ERR(pml_st_open("h.safetensors", &f, &err), err, PML_ERR_FORMAT, part);
    CHECK(f == NULL && strncmp(err.msg, "h.safetensors: ", 15) == 0);
    size_t n = 0;
    unsigned char *b = read_bytes("h.safetensors", &n);
    CHECK_ERR(pml_st_open_memory(b, n, "h.safetensors", &f, &err), err, PML_ERR_FORMAT, part);
    free(b);
}

#define ENTRY(name, dtype, shape, offs) \
    "\"" name "\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":" offs "}"

static void st_refuses_bad_header_lengths(void)
{
    pml_err err = {0};
    pml_st_file *f = NULL;
    CHECK(write_bytes("short.safetensors", "\x02\0\0", 3) == 0);
    CHECK_ERR(pml_st_open("short.safetensors", &f, &err), err, PML_ERR_FORMAT,
              "short.safetensors: file of 3 bytes is too short");
    CHECK(write_bytes("zero.safetensors", "", 0) == 0);
    CHECK_ERR(pml_st_open("zero.safetensors", &f, &err), err, PML_ERR_FORMAT, "zero.safetensors: file of 0 bytes");
    write_st("long.safetensors", 100, "{}", 0);
    CHECK_ERR(pml_st_open("long.safetensors", &f, &err), err, PML_ERR_FORMAT,
              "long.safetensors: header length 100 exceeds the 2 bytes that follow it");
    write_st("huge.safetensors", (uint64_t)1 << 63, "{}", 0);
    CHECK_ERR(pml_st_open("huge.safetensors", &f, &err), err, PML_ERR_FORMAT,
              "huge.safetensors: header length 9223372036854775808 exceeds the limit");
    write_st("max.safetensors", UINT64_MAX, "{}", 0);
    CHECK_ERR(pml_st_open("max.safetensors", &f, &err), err, PML_ERR_FORMAT, "max.safetensors: header length");
    CHECK(f == NULL);
}

static void st_refuses_invalid_json(void)
{
    hostile("{\"a\":", 0, "byte 13: expected a value but the input ends");
    hostile("[]", 0, "the header is a JSON array, not an object");
    hostile("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\"}}", 0, "duplicate object key \"dtype\"");
    hostile("{} x", 0, "byte 11");
    hostile("{\"\xff\":1}", 0, "invalid UTF-8");
}

static void st_refuses_wrong_types_and_keys(void)
{
    hostile("{\"w\":[]}", 0, "tensor 'w': the entry is a JSON array, not an object");
    hostile("{\"w\":{\"dtype\":\"F32\",\"shape\":[]}}", 4, "tensor 'w': missing 'data_offsets'");
    hostile("{\"w\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4],\"x\":1}}", 4,
            "tensor 'w': unknown key 'x'");
    hostile("{" ENTRY("w", "F32", "\"1\"", "[0,4]") "}", 4, "tensor 'w': 'shape' is a JSON string, not an array");
    hostile("{" ENTRY("w", "F32", "[1.0]", "[0,4]") "}", 4,
            "tensor 'w': 'shape' entry 0 is a JSON number, not an integer");
    hostile("{\"w\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'w': 'dtype' is a JSON integer");
    hostile("{" ENTRY("w", "F32", "[1]", "[0]") "}", 4, "tensor 'w': 'data_offsets' has 1 entries, expected 2");
    hostile("{" ENTRY("w", "F32", "[1]", "[0,4,4]") "}", 4, "tensor 'w': 'data_offsets' has 3 entries, expected 2");
    hostile("{" ENTRY("w", "F32", "[1]", "[4,0]") "}", 4, "tensor 'w': data_offsets [4, 0] end before they begin");
    hostile("{" ENTRY("w", "F32", "[1]", "[null,4]") "}", 4, "'data_offsets' entry 0 is a JSON null");
}

static void st_refuses_unknown_dtypes(void)
{
    hostile("{" ENTRY("w", "F8_E4M3", "[4]", "[0,4]") "}", 4, "tensor 'w': unknown dtype 'F8_E4M3'");
    hostile("{" ENTRY("w", "f32", "[1]", "[0,4]") "}", 4, "tensor 'w': unknown dtype 'f32'");
}

static void st_refuses_shape_offset_mismatch(void)
{
    hostile("{" ENTRY("wte.weight", "F32", "[5,6]", "[0,100]") "}", 100,
            "h.safetensors: tensor 'wte.weight': data_offsets [0, 100] hold 100 bytes but F32 [5, 6] needs 120");
    hostile("{" ENTRY("w", "F32", "[4294967296,4294967296]", "[0,4]") "}", 4,
            "tensor 'w': F32 [4294967296, 4294967296] has more bytes than a 64-bit size can count");
    hostile("{" ENTRY("w", "BF16", "[]", "[0,4]") "}", 4, "hold 4 bytes but BF16 [] needs 2");
}

static void st_refuses_overlaps_and_gaps(void)
{
    hostile("{" ENTRY("a", "F32", "[2]", "[0,8]") "," ENTRY("b", "F32", "[2]", "[4,12]") "}", 12,
            "tensor 'b': data_offsets [4, 12] overlap tensor 'a' [0, 8]");
    hostile("{" ENTRY("a", "F32", "[2]", "[0,8]") "," ENTRY("b", "F32", "[2]", "[0,8]") "}", 8, "overlap tensor 'a'");
    hostile("{" ENTRY("a", "F32", "[1]", "[0,4]") "," ENTRY("b", "F32", "[1]", "[8,12]") "}", 12,
            "tensor 'b': data_offsets [8, 12] leave bytes [4, 8) of the data section unused (a gap)");
    hostile("{" ENTRY("a", "F32", "[1]", "[4,8]") "}", 8, "tensor 'a': data_offsets [4, 8] leave bytes [0, 4)");
    hostile("{" ENTRY("a", "F32", "[1]", "[0,4]") "}", 9,
            "bytes [4, 9) at the end of the data section belong to no tensor");
    hostile("{}", 1, "bytes [0, 1) at the end");
}

static void st_refuses_offsets_beyond_the_end(void)
{
    hostile("{" ENTRY("w", "F32", "[2]", "[0,8]") "}", 4,
            "tensor 'w': data_offsets [0, 8] reach past the end of the data section (4 bytes)");
    hostile("{" ENTRY("w", "U8", "[1]", "[9223372036854775806,9223372036854775807]") "}", 4, "reach past the end");
    hostile("{" ENTRY("w", "U8", "[1]", "[0,18446744073709551616]") "}", 4, "out of the int64 range");
}

static void st_refuses_negative_dims(void)
{
    hostile("{" ENTRY("w", "F32", "[2,-1]", "[0,0]") "}", 0, "tensor 'w': 'shape' entry 1 is negative (-1)");
    hostile("{" ENTRY("w", "F32", "[1]", "[-4,0]") "}", 0, "tensor 'w': 'data_offsets' entry 0 is negative");
}

static void st_refuses_non_string_metadata(void)
{
    hostile("{\"__metadata__\":{\"step\":3}}", 0, "metadata 'step' is a JSON integer; metadata values must be strings");
    hostile("{\"__metadata__\":[\"a\"]}", 0, "'__metadata__' is a JSON array, not an object of strings");
    hostile("{\"__metadata__\":{\"a\":\"x\\u0000y\"}}", 0, "metadata 'a' contains a NUL character");
}

static void st_refuses_duplicate_and_empty_names(void)
{
    hostile("{" ENTRY("w", "U8", "[1]", "[0,1]") "," ENTRY("w", "U8", "[1]", "[1,2]") "}", 2,
            "duplicate object key \"w\"");
    hostile("{" ENTRY("", "U8", "[1]", "[0,1]") "}", 1, "h.safetensors: a tensor has an empty name");
    hostile("{" ENTRY("a\\u0000b", "U8", "[1]", "[0,1]") "}", 1, "the name contains a NUL character");
}

static void st_rank_above_8_is_unsupported(void)
{
    write_st("r9.safetensors", 0, "", 0);
    const char *h = "{" ENTRY("w", "U8", "[1,1,1,1,1,1,1,1,1]", "[0,1]") "}";
    write_st("r9.safetensors", strlen(h), h, 1);
    pml_st_file *f = NULL;
    pml_err err = {0};
    CHECK_ERR(pml_st_open("r9.safetensors", &f, &err), err, PML_ERR_UNSUPPORTED, "tensor 'w': rank 9 exceeds");
}

static void st_open_reports_missing_files_and_folders(void)
{
    pml_st_file *f = NULL;
    pml_err err = {0};
    CHECK_ERR(pml_st_open("absent.safetensors", &f, &err), err, PML_ERR_IO, "absent.safetensors: cannot open");
    CHECK_ERR(pml_st_open(".", &f, &err), err, PML_ERR_IO, ".: is a folder");
}

/* ---- atomic replacement ------------------------------------------------------------ */

static const char old_bytes[] = "the previous checkpoint";

static int old_file_intact(const char *path)
{
    size_t n = 0;
    unsigned char *b = read_bytes(path, &n);
    int ok = b && n == sizeof old_bytes && memcmp(b, old_bytes, n) == 0;
    free(b);
    return ok;
}

static int temp_files_left(const char *path)
{
    char *tmp = pml_out_tmp_name(path);
    int yes = file_exists(tmp);
    free(tmp);
    return yes;
}

static void st_failed_write_leaves_old_file_and_no_temp(void)
{
    static unsigned char big[1 << 20];
    const int64_t shape[] = {1 << 18};
    pml_st_tensor t = make("w", PML_F32, 1, shape, big, 0);
    pml_err err = {0};

    /* the folder does not exist */
    CHECK_ERR(pml_st_write("no/such/folder/m.safetensors", &t, 1, NULL, 0, &err), err, PML_ERR_IO,
              "no/such/folder/m.safetensors: cannot create the temporary file");
    CHECK(!file_exists("no"));

    /* the destination is a folder: refused, and the folder stays */
    CHECK(mkdir("dest.safetensors", 0777) == 0);
    CHECK_ERR(pml_st_write("dest.safetensors", &t, 1, NULL, 0, &err), err, PML_ERR_IO, "dest.safetensors: is a folder");
    CHECK(!temp_files_left("dest.safetensors"));
    struct stat sb;
    CHECK(stat("dest.safetensors", &sb) == 0 && S_ISDIR(sb.st_mode));

    /* the disk "fills" half way through the data (a file size limit): old file kept */
    CHECK(write_bytes("m.safetensors", old_bytes, sizeof old_bytes) == 0);
    struct rlimit saved, small;
    CHECK(getrlimit(RLIMIT_FSIZE, &saved) == 0);
    small = saved;
    small.rlim_cur = 64 * 1024;
    signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &small) == 0);
    CHECK_ERR(pml_st_write("m.safetensors", &t, 1, NULL, 0, &err), err, PML_ERR_IO, "m.safetensors: write failed");
    CHECK(setrlimit(RLIMIT_FSIZE, &saved) == 0);
    CHECK(old_file_intact("m.safetensors"));
    CHECK(!temp_files_left("m.safetensors"));

    /* invalid input: nothing is touched */
    t.nbytes--;
    CHECK_ERR(pml_st_write("m.safetensors", &t, 1, NULL, 0, &err), err, PML_ERR_INVALID_ARG, "m.safetensors");
    CHECK(old_file_intact("m.safetensors"));

    /* and a good write replaces it */
    t.nbytes++;
    CHECK(pml_st_write("m.safetensors", &t, 1, NULL, 0, &err) == PML_OK);
    CHECK(!old_file_intact("m.safetensors") && !temp_files_left("m.safetensors"));
}

static void atomic_abort_keeps_old_file(void)
{
    CHECK(write_bytes("a.bin", old_bytes, sizeof old_bytes) == 0);
    pml_atomic_file f;
    pml_err err = {0};
    CHECK(pml_atomic_open(&f, "a.bin", &err) == PML_OK);
    CHECK(temp_files_left("a.bin"));
    CHECK(pml_atomic_write(&f, "new", 3, &err) == PML_OK);
    pml_atomic_abort(&f);
    pml_atomic_abort(&f); /* idempotent */
    CHECK(old_file_intact("a.bin") && !temp_files_left("a.bin"));

    /* a stale temporary file of an earlier crash with our pid does not block a write */
    char *tmp = pml_out_tmp_name("a.bin");
    CHECK(write_bytes(tmp, "stale", 5) == 0);
    free(tmp);
    CHECK(pml_atomic_open(&f, "a.bin", &err) == PML_OK);
    CHECK(pml_atomic_write(&f, "new", 3, &err) == PML_OK);
    CHECK(pml_atomic_commit(&f, &err) == PML_OK);
    size_t n = 0;
    unsigned char *b = read_bytes("a.bin", &n);
    CHECK(b && n == 3 && memcmp(b, "new", 3) == 0);
    free(b);
    CHECK(!temp_files_left("a.bin"));
}

/* Whether the current folder holds a temporary file of `base` of any process. */
static int any_temp_left(const char *base)
{
    char prefix[256];
    snprintf(prefix, sizeof prefix, "%s.tmp.", base);
    DIR *d = opendir(".");
    int found = 0;
    for (struct dirent *e; d && (e = readdir(d));) found |= !strncmp(e->d_name, prefix, strlen(prefix));
    if (d) closedir(d);
    return found;
}

/* A handler as `pmlc infer`'s (cli_signal.c): the temporary files go, then the process. */
static void remove_and_end(int sig)
{
    pml_remove_partial_files();
    _exit(128 + sig);
}

/* A process ending on a signal in the middle of atomic writes leaves no temporary file
 * and every old file as it was: pml_remove_partial_files removes what the writes in
 * progress had made (formats/pending.h); without it both temporary files stay. */
static void atomic_signal_mid_write_leaves_old_file_and_no_temp(void)
{
    CHECK(write_bytes("a.bin", old_bytes, sizeof old_bytes) == 0);
    CHECK(write_bytes("b.bin", old_bytes, sizeof old_bytes) == 0);
    pid_t child = fork();
    if (child == 0) {
        signal(SIGTERM, remove_and_end);
        pml_atomic_file a, b;
        pml_err err = {0};
        if (pml_atomic_open(&a, "a.bin", &err) || pml_atomic_write(&a, "new", 3, &err) ||
            pml_atomic_open(&b, "b.bin", &err) || pml_atomic_write(&b, "half", 4, &err))
            _exit(3);
        if (!temp_files_left("a.bin") || !temp_files_left("b.bin")) _exit(4);
        raise(SIGTERM);
        _exit(5); /* not reached: the handler ends the process */
    }
    int status = 0;
    CHECK(child > 0 && waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGTERM);
    CHECK(old_file_intact("a.bin") && !any_temp_left("a.bin"));
    CHECK(old_file_intact("b.bin") && !any_temp_left("b.bin"));
}

#define T(fn)   \
    {           \
#fn, fn \
    }
static const test_case cases[] = {
    T(st_write_then_read_gives_every_dtype_back),
    T(st_scalars_and_empty_tensors_round_trip),
    T(st_many_tensors_round_trip),
    T(st_metadata_round_trips),
    T(st_writer_output_is_deterministic_and_padded),
    T(st_writer_refuses_bad_input),
    T(st_refuses_bad_header_lengths),
    T(st_refuses_invalid_json),
    T(st_refuses_wrong_types_and_keys),
    T(st_refuses_unknown_dtypes),
    T(st_refuses_shape_offset_mismatch),
    T(st_refuses_overlaps_and_gaps),
    T(st_refuses_offsets_beyond_the_end),
    T(st_refuses_negative_dims),
    T(st_refuses_non_string_metadata),
    T(st_refuses_duplicate_and_empty_names),
    T(st_rank_above_8_is_unsupported),
    T(st_open_reports_missing_files_and_folders),
    T(st_failed_write_leaves_old_file_and_no_temp),
    T(atomic_abort_keeps_old_file),
    T(atomic_signal_mid_write_leaves_old_file_and_no_temp),
};

int main(int argc, char **argv) { return test_main(argc, argv, cases, sizeof cases / sizeof *cases); }
