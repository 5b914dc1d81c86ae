/* markov.c — markov(vocab, order, seed) with sequence length T: a stationary order-k
 * Markov source over vocab tokens, whose exact entropy rate is known, so training can
 * print the best possible loss.
 *
 * The table: a mixed-order Markov model. Each of the `order` previous tokens t_j (j = 1
 * is the most recent) brings its own next-token distribution D_j[t_j], and a context's
 * row is their equal-weight mixture, sum_j D_j[t_j] / order. Each D_j[t] is drawn
 * approximately Dirichlet(alpha) with alpha = CONCENTRATION / vocab (weights
 * Exp(1) * U^(1/alpha), the small-alpha form of a Gamma(alpha) draw), so it favours a
 * few next tokens. Why this shape: text's statistics are smooth in the context, and a
 * table with an independent row per context (vocab^order rows) cannot be learnt from
 * the million or so tokens a CPU trains on in minutes — no learner could, counting
 * included — while here the source has order * vocab rows to learn, yet no single
 * previous token predicts the next one well (for the GPT example, the last token alone
 * leaves the loss about 40% above the entropy rate), so a model must look `order`
 * tokens back to get close. A floor mixes in FLOOR of the uniform distribution, so
 * every transition is possible: the context chain is then irreducible (any context
 * reaches any other in `order` steps) and aperiodic (a context of repeated tokens can
 * repeat), and has one stationary distribution that power iteration finds quickly.
 * Probabilities are stored as 32-bit cumulative thresholds (multiples of 2^-32): 4 bytes
 * per entry, and the entropy and stationary distribution are computed for exactly these
 * quantised probabilities, the ones the sampler uses.
 *
 * The stationary distribution pi over contexts: power iteration pi <- pi P from the
 * uniform distribution, renormalised each step, until the L1 change of a step is below
 * 1e-12 (at most MAX_ITERATIONS steps). Then H = sum_ctx pi(ctx) H(next | ctx).
 *
 * A sample i: its starting context is drawn from pi (inverse CDF of a uniform for
 * (seed, i)) and is the sequence's first `order` tokens; the chain then generates the
 * rest, token t using counter t of a key drawn for (seed, i). The T+1 tokens are a
 * stationary sequence; input = tokens[0..T), label = tokens[1..T]. */
#include "data/markov.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

#define CONCENTRATION 2.0 /* vocab * alpha: about this many favoured next tokens */
#define FLOOR 0.02        /* the mass spread uniformly over all next tokens */
#define TOLERANCE 1e-12
#define MAX_ITERATIONS 100000
#define ONE 4294967296.0 /* 2^32, the total weight of a row */

/* The weight (in units of 2^-32) of token x in row `row`. */
static uint64_t weight(const uint32_t *row, int64_t vocab, int64_t x)
{
    uint64_t hi = x + 1 < vocab ? row[x + 1] : (uint64_t)1 << 32;
    return hi - row[x];
}

/* Stores probabilities p[0..vocab) (positive, summing to about 1) as thresholds whose
 * weights are at least 1 and sum to exactly 2^32; the rounding goes to the largest. */
static void quantise_row(uint32_t *row, const double *p, int64_t vocab)
{
    int64_t total = 0, big = 0;
    for (int64_t x = 0; x < vocab; x++) {
        int64_t w = (int64_t)floor(p[x] * ONE);
        if (w < 1) w = 1;
        row[x] = (uint32_t)(w > UINT32_MAX ? UINT32_MAX : w); /* weights for now */
        total += row[x];
        if (row[x] > row[big]) big = x;
    }
    row[big] = (uint32_t)((int64_t)row[big] + ((int64_t)1 << 32) - total);
    uint32_t sum = 0;
    for (int64_t x = 0; x < vocab; x++) {
        uint32_t w = row[x];
        row[x] = sum;
        sum += w; /* wraps to 0 after the last, exactly */
    }
}

/* Draw `c` of `stream`: a distribution over vocab tokens favouring a few, in p. */
static void draw_dirichlet(uint64_t seed, uint64_t stream, uint64_t c, int64_t vocab, double *p)
{
    double inv_alpha = (double)vocab / CONCENTRATION, top = -INFINITY;
    for (int64_t x = 0; x < vocab; x++) {
        uint64_t k = 2 * (c * (uint64_t)vocab + (uint64_t)x);
        double e = pml_rng_uniform(seed, stream, k) + 0x1.0p-54; /* (0, 1) */
        double u = pml_rng_uniform(seed, stream, k + 1) + 0x1.0p-54;
        p[x] = log(-log(e)) + log(u) * inv_alpha; /* log of Exp(1) * U^(1/alpha) */
        if (p[x] > top) top = p[x];
    }
    double sum = 0;
    for (int64_t x = 0; x < vocab; x++) sum += p[x] = exp(p[x] - top);
    for (int64_t x = 0; x < vocab; x++) p[x] /= sum;
}

/* Row c of the seeded table, in p (vocab doubles); `d` is scratch of vocab doubles.
 * Context c is numbered oldest token first, so the token j back is c / vocab^(j-1) % vocab;
 * D_j[t] is draw (j - 1) * vocab + t of the table stream. */
static void draw_row(uint64_t seed, uint64_t c, int64_t vocab, int64_t order, double *p, double *d)
{
    uint64_t v = (uint64_t)vocab, rest = c;
    for (int64_t x = 0; x < vocab; x++) p[x] = FLOOR / (double)vocab;
    for (int64_t j = 0; j < order; j++, rest /= v) {
        draw_dirichlet(seed, PML_SYNTH_STREAM_TABLE, (uint64_t)j * v + rest % v, vocab, d);
        for (int64_t x = 0; x < vocab; x++) p[x] += (1 - FLOOR) * d[x] / (double)order;
    }
}

/* Power iteration for pi (into m->cdf, then made cumulative) and the entropy rate. */
static pml_status solve(pml_synth_markov *m, pml_err *err)
{
    uint64_t n = m->contexts;
    int64_t v = m->vocab;
    double *pi = m->cdf, *next = malloc(n * sizeof *next);
    if (!next) return pml_err_set(err, PML_ERR_NOMEM, "markov: out of memory for the stationary distribution");
    for (uint64_t c = 0; c < n; c++) pi[c] = 1.0 / (double)n;
    double change = INFINITY;
    int it;
    for (it = 0; it < MAX_ITERATIONS && change >= TOLERANCE; it++) {
        memset(next, 0, n * sizeof *next);
        for (uint64_t c = 0; c < n; c++) {
            const uint32_t *row = m->table + c * (uint64_t)v;
            double *to = next + (c % m->tail) * (uint64_t)v, w = pi[c] / ONE;
            for (int64_t x = 0; x < v; x++) to[x] += w * (double)weight(row, v, x);
        }
        double sum = 0;
        for (uint64_t c = 0; c < n; c++) sum += next[c];
        change = 0;
        for (uint64_t c = 0; c < n; c++) {
            next[c] /= sum;
            change += fabs(next[c] - pi[c]);
        }
        double *t = pi;
        pi = next, next = t;
    }
    if (pi != m->cdf) memcpy(m->cdf, pi, n * sizeof *pi), next = pi;
    free(next);
    if (change >= TOLERANCE)
        return pml_err_set(err, PML_ERR_INTERNAL, "markov: the stationary distribution did not converge in %d steps",
                           MAX_ITERATIONS);

    double h = 0, run = 0;
    for (uint64_t c = 0; c < n; c++) {
        const uint32_t *row = m->table + c * (uint64_t)v;
        double hc = 0;
        for (int64_t x = 0; x < v; x++) {
            double q = (double)weight(row, v, x) / ONE;
            hc -= q * log(q);
        }
        h += m->cdf[c] * hc;
        run += m->cdf[c];
        m->cdf[c] = run;
    }
    m->cdf[n - 1] = 1.0;
    m->entropy = h;
    return PML_OK;
}

pml_status pml_markov_init(pml_synth_markov *m, const pml_synth_params *p, pml_synth_shape *input,
                           pml_synth_shape *label, pml_err *err)
{
    if (p->vocab < 2)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "markov: vocab must be at least 2, got %lld", (long long)p->vocab);
    if (p->order < 1)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "markov: order must be at least 1, got %lld", (long long)p->order);
    if (p->length < 1 || p->length > INT32_MAX)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "markov: the sequence length T must be in 1..%d, got %lld",
                           INT32_MAX, (long long)p->length);
    uint64_t n = 1;
    for (int64_t k = 0; k < p->order; k++) {
        if (n > PML_SYNTH_MAX_CONTEXTS / (uint64_t)p->vocab)
            return pml_err_set(err, PML_ERR_INVALID_ARG,
                               "markov: vocab^order = %lld^%lld contexts is more than the limit of 2^24 (%llu)",
                               (long long)p->vocab, (long long)p->order, (unsigned long long)PML_SYNTH_MAX_CONTEXTS);
        n *= (uint64_t)p->vocab;
    }
    /* The table, the stationary distribution and power iteration's second vector. */
    uint64_t bytes = n * (uint64_t)p->vocab * sizeof(uint32_t) + 2 * n * sizeof(double);
    if (bytes > PML_SYNTH_MAX_BYTES)
        return pml_err_set(err, PML_ERR_INVALID_ARG,
                           "markov: vocab %lld, order %lld needs %llu MiB for its transition table, more than the "
                           "%llu MiB limit",
                           (long long)p->vocab, (long long)p->order,
                           (unsigned long long)((bytes + (1 << 20) - 1) >> 20),
                           (unsigned long long)(PML_SYNTH_MAX_BYTES >> 20));

    m->vocab = p->vocab;
    m->order = p->order;
    m->length = p->length;
    m->contexts = n;
    m->tail = n / (uint64_t)p->vocab;
    m->table = malloc(n * (uint64_t)p->vocab * sizeof *m->table);
    m->cdf = malloc(n * sizeof *m->cdf);
    double *row = malloc(2 * (uint64_t)p->vocab * sizeof *row);
    if (!m->table || !m->cdf || !row) {
        free(row);
        return pml_err_set(err, PML_ERR_NOMEM, "markov: out of memory for the transition table");
    }
    for (uint64_t c = 0; c < n; c++) {
        draw_row(p->seed, c, m->vocab, m->order, row, row + m->vocab);
        quantise_row(m->table + c * (uint64_t)m->vocab, row, m->vocab);
    }
    free(row);
    *input = (pml_synth_shape){PML_I32, 1, {p->length}};
    *label = (pml_synth_shape){PML_I32, 1, {p->length}};
    return solve(m, err);
}

void pml_markov_free(pml_synth_markov *m)
{
    free(m->table);
    free(m->cdf);
}

/* The first index whose entry is above u (sorted entries; the last is above any u). */
static uint64_t first_above_f64(const double *a, uint64_t n, double u)
{
    uint64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (a[mid] > u)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* The token x whose threshold range [row[x], row[x+1]) holds u. */
static int64_t token_at(const uint32_t *row, int64_t vocab, uint32_t u)
{
    int64_t lo = 0, hi = vocab - 1;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo + 1) / 2;
        if (row[mid] <= u)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

void pml_markov_sample(const pml_synth_markov *m, uint64_t seed, uint64_t i, int32_t *input, int32_t *label)
{
    uint64_t v = (uint64_t)m->vocab, len = (uint64_t)m->length, order = (uint64_t)m->order;
    uint64_t ctx = first_above_f64(m->cdf, m->contexts, pml_rng_uniform(seed, PML_SYNTH_STREAM_START, i));
    uint64_t key = pml_rng_u64(seed, PML_SYNTH_STREAM_STEP, i), place = m->tail;
    for (uint64_t t = 0; t <= len; t++) {
        uint64_t x;
        if (t < order) { /* the starting context, oldest token first */
            x = ctx / place % v;
            place /= v;
        } else {
            uint32_t u = (uint32_t)(pml_rng_u64(key, PML_SYNTH_STREAM_STEP, t) >> 32);
            x = (uint64_t)token_at(m->table + ctx * v, m->vocab, u);
            ctx = ctx % m->tail * v + x;
        }
        if (input && t < len) input[t] = (int32_t)x;
        if (label && t > 0) label[t - 1] = (int32_t)x;
    }
}

double pml_markov_prob(const pml_synth_markov *m, uint64_t ctx, int32_t next)
{
    if (ctx >= m->contexts || next < 0 || next >= m->vocab) return NAN;
    return (double)weight(m->table + ctx * (uint64_t)m->vocab, m->vocab, next) / ONE;
}

double pml_markov_stationary(const pml_synth_markov *m, uint64_t ctx)
{
    if (ctx >= m->contexts) return NAN;
    return m->cdf[ctx] - (ctx ? m->cdf[ctx - 1] : 0.0);
}

pml_status pml_markov_set_table(pml_synth_markov *m, const double *probs, pml_err *err)
{
    uint64_t v = (uint64_t)m->vocab;
    for (uint64_t c = 0; c < m->contexts; c++) {
        double sum = 0;
        for (uint64_t x = 0; x < v; x++) {
            double q = probs[c * v + x];
            if (!(q > 0 && q <= 1))
                return pml_err_set(err, PML_ERR_INVALID_ARG,
                                   "markov: P(%llu | context %llu) = %g; every probability must be in (0, 1]",
                                   (unsigned long long)x, (unsigned long long)c, q);
            sum += q;
        }
        if (fabs(sum - 1) > 1e-6)
            return pml_err_set(err, PML_ERR_INVALID_ARG, "markov: the row of context %llu sums to %.9g, not 1",
                               (unsigned long long)c, sum);
    }
    for (uint64_t c = 0; c < m->contexts; c++) quantise_row(m->table + c * v, probs + c * v, m->vocab);
    return solve(m, err);
}
