/* st_shards.h — one set of named tensors stored as a single safetensors file or as
 * Hugging Face shards: BASE-0000k-of-0000n.safetensors files beside an index,
 * BASE.safetensors.index.json = {"metadata": {...}, "weight_map": {tensor: file}}, the
 * layout transformers and safetensors users already read. Multi-rank checkpoints are
 * written this way (ckpt/checkpoint.h), and every reader of weights accepts either.
 *
 * Opening a path: a folder means its BASE.safetensors.index.json when there is one,
 * else its BASE.safetensors; a path ending in ".json" is an index; anything else is a
 * single safetensors file. Opening an index validates the whole set before returning:
 * the index is a JSON object with an object "weight_map" of strings (and optionally an
 * object "metadata"); each file it names is a plain file name in the index's folder
 * (no '/', not "." or ".."), exists and is a valid safetensors file (safetensors.h);
 * every tensor the index lists is in the file it names, and every tensor of every shard
 * is listed, under that shard — so a tensor held by two shards, a shard missing, or a
 * shard holding what the index does not list is PML_ERR_FORMAT naming the path and the
 * tensor. Files the index does not name are ignored (leftovers of another layout).
 *
 * Metadata: a single file's own; for shards, the index's "metadata" members that are
 * strings (each shard's own metadata is reachable through pml_sts_shard).
 *
 * Ownership: the set owns every file, name and tensor it returns until pml_sts_close.
 * Thread safety: as safetensors.h (read-only once open). */
#ifndef PML_FORMATS_ST_SHARDS_H
#define PML_FORMATS_ST_SHARDS_H

#include <stddef.h>

#include "formats/safetensors.h"

typedef struct pml_sts pml_sts;

/* Opens `path` as described above; `base` is the file name stem a folder is searched
 * for ("model", "optimizer"). */
pml_status pml_sts_open(const char *path, const char *base, pml_sts **out, pml_err *err);
void pml_sts_close(pml_sts *s); /* NULL-safe */

/* The path opened (the index for shards, the file otherwise), for messages. */
const char *pml_sts_path(const pml_sts *s);
/* Every tensor of every shard (i < pml_sts_count), and by name (NULL: absent). */
size_t pml_sts_count(const pml_sts *s);
const pml_st_tensor *pml_sts_tensor_at(const pml_sts *s, size_t i);
const pml_st_tensor *pml_sts_find(const pml_sts *s, const char *name);
/* The path of the file that holds tensor `name` (the set's path when absent). */
const char *pml_sts_where(const pml_sts *s, const char *name);
const char *pml_sts_metadata(const pml_sts *s, const char *key);
/* The files: one for a single file, else the shards in index order of first mention. */
size_t pml_sts_shards(const pml_sts *s);
const pml_st_file *pml_sts_shard(const pml_sts *s, size_t i, const char **path);

/* The index of a sharded set: "BASE-0000k-of-0000n.safetensors" for shard k of n
 * (1-based, as Hugging Face numbers them) into out[cap]. */
void pml_sts_shard_name(const char *base, int k, int n, char *out, size_t cap);
/* Writes BASE.safetensors.index.json atomically at `path`: string metadata pairs plus
 * "total_size" (bytes of tensor data, as Hugging Face writes it), and the weight map,
 * names[i] held by files[i]. */
pml_status pml_sts_write_index(const char *path, const pml_st_meta *meta, size_t n_meta, long long total_size,
                               const char *const *names, const char *const *files, size_t n, pml_err *err);

#endif
