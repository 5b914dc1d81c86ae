/* pattern.c — matching freeze patterns against parameter names (see train_blocks.h).
 *
 * Patterns match dotted names segment by segment: '*' is any run of characters
 * within a segment, '?' one character, "[a-b]" an integer segment in a..b, and "**"
 * any number of segments. A pattern that matches a dotted prefix matches the whole
 * name, so `blocks.3` freezes every parameter under it. */
#include <stdio.h>
#include <string.h>

#include "pmlc.h"
#include "sema/train_blocks.h"

/* One segment: '*' any run of characters, '?' one, "[a-b]" an integer in a..b. */
static int seg_match(const char *p, const char *pe, const char *s, const char *se)
{
    if (pe - p >= 5 && *p == '[' && pe[-1] == ']') {
        long long a, b;
        char tail;
        char buf[64];
        size_t n = (size_t)(pe - p);
        if (n < sizeof buf) {
            memcpy(buf, p, n);
            buf[n] = 0;
            if (sscanf(buf, "[%lld-%lld%c", &a, &b, &tail) == 3 && tail == ']') {
                if (s == se || se - s > 18) return 0;
                for (const char *c = s; c < se; c++)
                    if (*c < '0' || *c > '9') return 0;
                long long v = 0;
                for (const char *c = s; c < se; c++) v = v * 10 + (*c - '0');
                return v >= a && v <= b;
            }
        }
    }
    while (p < pe) {
        if (*p == '*') {
            for (const char *k = se; k >= s; k--)
                if (seg_match(p + 1, pe, k, se)) return 1;
            return 0;
        }
        if (s == se || (*p != '?' && *p != *s)) return 0;
        p++, s++;
    }
    return s == se;
}

static const char *seg_end(const char *s)
{
    const char *e = strchr(s, '.');
    return e ? e : s + strlen(s);
}

static int match_from(const char *p, const char *s, int depth)
{
    if (depth > 64) return 0;
    if (!*p) return 1; /* pattern used up at a segment boundary: a prefix matches */
    if (!*s) return 0;
    const char *pe = seg_end(p), *se = seg_end(s);
    const char *pn = *pe ? pe + 1 : pe, *sn = *se ? se + 1 : se;
    if (pe - p == 2 && p[0] == '*' && p[1] == '*') { /* any number of segments */
        for (const char *k = s;; k = seg_end(k) + 1) {
            if (match_from(pn, k, depth + 1)) return 1;
            if (!*seg_end(k)) return !*pn;
        }
    }
    return seg_match(p, pe, s, se) && match_from(pn, sn, depth + 1);
}

int pmlc_pattern_match(const char *pattern, const char *name) { return *pattern && match_from(pattern, name, 0); }

int pmlc_name_match(const char *pattern, const char *name) { return pattern && name && pmlc_pattern_match(pattern, name); }
