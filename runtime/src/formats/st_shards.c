/* st_shards.c — a tensor set in one safetensors file or in indexed shards (see
 * st_shards.h). */
#define _POSIX_C_SOURCE 200809L /* stat */
#include "formats/st_shards.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "formats/json.h"

#define INDEX_MAX_BYTES ((size_t)64 << 20)

typedef struct entry {
    const pml_st_tensor *t;
    int shard;
} entry;

struct pml_sts {
    char *path;              /* what was opened: the index or the file */
    pml_json_doc *index;     /* NULL for a single file */
    const pml_json *meta;    /* the index's "metadata" object, or NULL */
    size_t n_shards;
    pml_st_file **shards;
    char **shard_paths;
    size_t n;
    entry *by_name; /* every tensor, sorted by name */
};

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->t->name, ((const entry *)b)->t->name);
}

static const entry *find(const pml_sts *s, const char *name)
{
    pml_st_tensor key = {.name = name};
    entry k = {&key, 0};
    return s->n ? bsearch(&k, s->by_name, s->n, sizeof *s->by_name, cmp_entry) : NULL;
}

void pml_sts_close(pml_sts *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n_shards; i++) {
        pml_st_close(s->shards[i]);
        free(s->shard_paths[i]);
    }
    free(s->shards);
    free(s->shard_paths);
    free(s->by_name);
    pml_json_free(s->index);
    free(s->path);
    free(s);
}

static char *join(const char *dir, const char *name)
{
    size_t len = strlen(dir) + strlen(name) + 2;
    char *p = malloc(len);
    if (p) snprintf(p, len, "%s/%s", dir, name);
    return p;
}

static int is_dir(const char *path)
{
    struct stat sb;
    return !stat(path, &sb) && S_ISDIR(sb.st_mode);
}

static int exists(const char *path)
{
    struct stat sb;
    return !stat(path, &sb);
}

/* Opens `path` and adds it as the next shard. */
static pml_status add_shard(pml_sts *s, const char *path, pml_err *err)
{
    pml_st_file **f = realloc(s->shards, (s->n_shards + 1) * sizeof *f);
    if (f) s->shards = f;
    char **p = realloc(s->shard_paths, (s->n_shards + 1) * sizeof *p);
    if (p) s->shard_paths = p;
    char *copy = strdup(path);
    if (!f || !p || !copy) {
        free(copy);
        return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    }
    s->shards[s->n_shards] = NULL;
    s->shard_paths[s->n_shards] = copy;
    s->n_shards++; /* closed with the set even when opening fails */
    return pml_st_open(path, &s->shards[s->n_shards - 1], err);
}

/* Every tensor of every shard into by_name, sorted; for shards, each must be listed in
 * the weight map under its own shard (a second holder is caught here too). */
static pml_status collect(pml_sts *s, const pml_json *map, pml_err *err)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_shards; i++) n += pml_st_count(s->shards[i]);
    s->by_name = malloc((n ? n : 1) * sizeof *s->by_name);
    if (!s->by_name) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < s->n_shards; i++)
        for (size_t k = 0; k < pml_st_count(s->shards[i]); k++) {
            const pml_st_tensor *t = pml_st_tensor_at(s->shards[i], k);
            if (map) {
                const pml_json *where = pml_json_get(map, t->name);
                const char *file = strrchr(s->shard_paths[i], '/') + 1;
                if (!where)
                    return pml_err_set(err, PML_ERR_FORMAT, "%s: shard %s holds tensor '%s', which the index does not list",
                                       s->path, file, t->name);
                if (strcmp(where->u.str.s, file))
                    return pml_err_set(err, PML_ERR_FORMAT,
                                       "%s: tensor '%s' is in shard %s too, but the index puts it in %s", s->path,
                                       t->name, file, where->u.str.s);
            }
            s->by_name[s->n++] = (entry){t, (int)i};
        }
    qsort(s->by_name, s->n, sizeof *s->by_name, cmp_entry);
    return PML_OK;
}

/* The index at s->path: its shards opened and cross-checked. */
static pml_status open_index(pml_sts *s, pml_err *err)
{
    pml_status st = pml_json_load(s->path, INDEX_MAX_BYTES, &s->index, err);
    if (st) return st;
    const pml_json *root = pml_json_root(s->index), *map = pml_json_get(root, "weight_map");
    if (root->kind != PML_JSON_OBJECT) return pml_err_set(err, PML_ERR_FORMAT, "%s: not a JSON object", s->path);
    if (!map || map->kind != PML_JSON_OBJECT)
        return pml_err_set(err, PML_ERR_FORMAT, "%s: no \"weight_map\" object (not a safetensors index)", s->path);
    s->meta = pml_json_get(root, "metadata");
    if (s->meta && s->meta->kind != PML_JSON_OBJECT)
        return pml_err_set(err, PML_ERR_FORMAT, "%s: \"metadata\" is not an object", s->path);
    char *dir = strdup(s->path);
    if (!dir) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        strcpy(dir, ".");
    for (size_t i = 0; i < map->u.obj.n && !st; i++) {
        const char *name = map->u.obj.keys[i].u.str.s;
        const pml_json *v = &map->u.obj.values[i];
        if (v->kind != PML_JSON_STRING) {
            st = pml_err_set(err, PML_ERR_FORMAT, "%s: the weight map's entry for '%s' is not a file name", s->path,
                             name);
            break;
        }
        const char *file = v->u.str.s;
        if (!*file || strchr(file, '/') || !strcmp(file, ".") || !strcmp(file, "..") || strlen(file) != v->u.str.len) {
            st = pml_err_set(err, PML_ERR_FORMAT,
                             "%s: tensor '%s' is in '%s', which is not a file name in the index's folder", s->path,
                             name, file);
            break;
        }
        int known = 0;
        for (size_t k = 0; k < s->n_shards && !known; k++) known = !strcmp(strrchr(s->shard_paths[k], '/') + 1, file);
        if (known) continue;
        char *path = join(dir, file);
        if (!path) {
            st = pml_err_set(err, PML_ERR_NOMEM, "out of memory");
        } else if (!exists(path)) {
            st = pml_err_set(err, PML_ERR_FORMAT, "%s: shard %s (holding '%s') is missing", s->path, file, name);
        } else {
            st = add_shard(s, path, err);
        }
        free(path);
    }
    free(dir);
    if (!st) st = collect(s, map, err);
    /* Every listed tensor must be in the shard the index names (collect checked the
     * other direction). */
    for (size_t i = 0; !st && i < map->u.obj.n; i++) {
        const char *name = map->u.obj.keys[i].u.str.s;
        if (!find(s, name))
            st = pml_err_set(err, PML_ERR_FORMAT, "%s: the index puts tensor '%s' in %s, which does not hold it",
                             s->path, name, map->u.obj.values[i].u.str.s);
    }
    return st;
}

static int ends_with(const char *s, const char *tail)
{
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && !strcmp(s + a - b, tail);
}

pml_status pml_sts_open(const char *path, const char *base, pml_sts **out, pml_err *err)
{
    *out = NULL;
    pml_sts *s = calloc(1, sizeof *s);
    if (!s) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    pml_status st = PML_OK;
    int sharded = ends_with(path, ".json");
    if (is_dir(path)) {
        size_t len = strlen(path) + strlen(base) + 32;
        s->path = malloc(len);
        if (s->path) {
            snprintf(s->path, len, "%s/%s.safetensors.index.json", path, base);
            sharded = exists(s->path);
            if (!sharded) snprintf(s->path, len, "%s/%s.safetensors", path, base);
        }
    } else {
        s->path = strdup(path);
    }
    if (!s->path) st = pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    if (!st && sharded) st = open_index(s, err);
    if (!st && !sharded) {
        st = add_shard(s, s->path, err);
        if (!st) st = collect(s, NULL, err);
    }
    if (st) {
        pml_sts_close(s);
        return st;
    }
    *out = s;
    return PML_OK;
}

const char *pml_sts_path(const pml_sts *s) { return s->path; }
size_t pml_sts_count(const pml_sts *s) { return s->n; }
const pml_st_tensor *pml_sts_tensor_at(const pml_sts *s, size_t i) { return s->by_name[i].t; }

const pml_st_tensor *pml_sts_find(const pml_sts *s, const char *name)
{
    const entry *e = find(s, name);
    return e ? e->t : NULL;
}

const char *pml_sts_where(const pml_sts *s, const char *name)
{
    const entry *e = find(s, name);
    return e ? s->shard_paths[e->shard] : s->path;
}

const char *pml_sts_metadata(const pml_sts *s, const char *key)
{
    if (!s->index) return pml_st_metadata(s->shards[0], key);
    const pml_json *v = s->meta ? pml_json_get(s->meta, key) : NULL;
    return v && v->kind == PML_JSON_STRING ? v->u.str.s : NULL;
}

size_t pml_sts_shards(const pml_sts *s) { return s->n_shards; }

const pml_st_file *pml_sts_shard(const pml_sts *s, size_t i, const char **path)
{
    if (path) *path = s->shard_paths[i];
    return s->shards[i];
}

void pml_sts_shard_name(const char *base, int k, int n, char *out, size_t cap)
{
    snprintf(out, cap, "%s-%05d-of-%05d.safetensors", base, k, n);
}

pml_status pml_sts_write_index(const char *path, const pml_st_meta *meta, size_t n_meta, long long total_size,
                               const char *const *names, const char *const *files, size_t n, pml_err *err)
{
    pml_json_buf b = {0};
    pml_json_buf_printf(&b, "{\n  \"metadata\": {\n    \"total_size\": %lld", total_size);
    for (size_t i = 0; i < n_meta; i++) {
        pml_json_buf_puts(&b, ",\n    ");
        pml_json_buf_string(&b, meta[i].key, strlen(meta[i].key));
        pml_json_buf_puts(&b, ": ");
        pml_json_buf_string(&b, meta[i].value, strlen(meta[i].value));
    }
    pml_json_buf_puts(&b, "\n  },\n  \"weight_map\": {");
    for (size_t i = 0; i < n; i++) {
        pml_json_buf_puts(&b, i ? ",\n    " : "\n    ");
        pml_json_buf_string(&b, names[i], strlen(names[i]));
        pml_json_buf_puts(&b, ": ");
        pml_json_buf_string(&b, files[i], strlen(files[i]));
    }
    pml_json_buf_puts(&b, n ? "\n  }\n}\n" : "}\n}\n");
    return pml_json_buf_save(&b, path, err);
}
