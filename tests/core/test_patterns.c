/* test_patterns.c — freeze patterns (pattern.c) and "did you mean" suggestions
 * (diag.c): the two places where a user's spelling meets the names a model has. */
#include <string.h>

#include "check.h"
#include "front/diag.h"
#include "sema/train_blocks.h"

static void patterns_match_segments_and_prefixes(void)
{
    CHECK(pmlc_pattern_match("wte", "wte.weight"));
    CHECK(pmlc_pattern_match("wte.weight", "wte.weight"));
    CHECK(!pmlc_pattern_match("wt", "wte.weight")); /* no partial segments */
    CHECK(!pmlc_pattern_match("wte.weight.x", "wte.weight"));
    CHECK(pmlc_pattern_match("blocks.*.attn", "blocks.3.attn.qkv.weight"));
    CHECK(!pmlc_pattern_match("blocks.*.attn", "blocks.3.mlp.fc.weight"));
    CHECK(pmlc_pattern_match("blocks.3.*", "blocks.3.ln_1.bias"));
    CHECK(pmlc_pattern_match("*.bias", "head.bias"));
    CHECK(!pmlc_pattern_match("*.bias", "blocks.0.ln_1.bias")); /* '*' stays in one segment */
    CHECK(pmlc_pattern_match("**.bias", "blocks.0.ln_1.bias"));
    CHECK(pmlc_pattern_match("ln_?", "ln_f.weight"));
    CHECK(!pmlc_pattern_match("", "wte.weight"));
}

static void ranges_are_integers_not_characters(void)
{
    CHECK(pmlc_pattern_match("blocks.[0-3]", "blocks.3.attn.qkv.weight"));
    CHECK(!pmlc_pattern_match("blocks.[0-3]", "blocks.4.attn.qkv.weight"));
    CHECK(pmlc_pattern_match("blocks.[0-11]", "blocks.10.mlp.fc.bias")); /* a character class could not say this */
    CHECK(!pmlc_pattern_match("blocks.[0-11]", "blocks.12.mlp.fc.bias"));
    CHECK(!pmlc_pattern_match("blocks.[0-3]", "blocks.x.weight"));
    CHECK(!pmlc_pattern_match("[0-3]", "wte.weight"));
}

static void suggestions_are_close_or_absent(void)
{
    const char *fields[] = {"batch", "microbatches", "schedule", "precision", "optimizer"};
    CHECK(!strcmp(pmlc_suggest("bacth", fields, 5), "batch")); /* a transposition */
    CHECK(!strcmp(pmlc_suggest("precison", fields, 5), "precision"));
    CHECK(!strcmp(pmlc_suggest("microbatch", fields, 5), "microbatches"));
    CHECK(pmlc_suggest("zebra", fields, 5) == NULL);
    CHECK(pmlc_suggest("batch", fields, 5) == NULL); /* itself is no suggestion */
    const char *names[] = {"m", "x"};
    CHECK(pmlc_suggest("B", names, 2) == NULL); /* one letter is no typo of another */
}

int main(void)
{
    patterns_match_segments_and_prefixes();
    ranges_are_integers_not_characters();
    suggestions_are_close_or_absent();
    return check_summary("patterns");
}
