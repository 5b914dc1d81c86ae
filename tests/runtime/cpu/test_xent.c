/* test_xent.c — the fused cross-entropy (xent) and its backward (xent_grad) against a
 * naive double reference, and label checking. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_test.h"
#include "cpu_tests.h"

/* loss[r] = log Σ exp(x[r]) - x[r, label] and dx = (softmax(x[r]) - onehot) · dloss[r],
 * in double from the tensors' own values. */
static void reference(const pml_view *x, const pml_view *lab, const pml_view *dloss, int64_t rows, int64_t V,
                      double *loss, double *dx)
{
    for (int64_t r = 0; r < rows; r++) {
        double m = -INFINITY, s = 0;
        for (int64_t k = 0; k < V; k++) m = fmax(m, t_get(x, r * V + k));
        for (int64_t k = 0; k < V; k++) s += exp(t_get(x, r * V + k) - m);
        int64_t l = (int64_t)t_get(lab, r);
        double lse = m + log(s), g = t_get(dloss, r);
        loss[r] = lse - t_get(x, r * V + l);
        for (int64_t k = 0; k < V; k++) dx[r * V + k] = (exp(t_get(x, r * V + k) - lse) - (k == l)) * g;
    }
}

void test_xent_and_its_gradient_match_a_double_reference(void)
{
    static const int64_t widths[] = {1, 2, 3, 15, 16, 17, 31, 33, 100, 1000, 1027, 50257};
    for (int ti = 0; ti < 2; ti++)
        for (int trial = 0; trial < 36; trial++) {
            pml_dtype t = t_float_types[ti];
            int64_t V = widths[trial % 12], dr[8], dx[8];
            int rr = t_int(1, 3); /* rank of the labels */
            t_rand_dims(rr, dr, 1, V > 1000 ? 2 : 6);
            memcpy(dx, dr, sizeof dr);
            dx[rr] = V;
            pml_view x = t_new(t, rr + 1, dx), lab = t_new(PML_I32, rr, dr), loss = t_new(t, rr, dr),
                     dl = t_new(t, rr, dr), g = t_new(t, rr + 1, dx);
            int64_t rows = t_numel(&lab);
            /* Logits of a few units, or of ±80 (where exp overflows without the max taken
             * out); labels at both ends of the row among the random ones. */
            double span = trial % 3 == 2 ? 80 : 5;
            t_fill_rand(&x, -span, span);
            t_fill_rand(&lab, 0, (double)V - 1);
            t_fill_rand(&dl, -2, 2);
            t_set(&lab, 0, 0);
            t_set(&lab, rows - 1, (double)V - 1);
            if (trial % 3 == 2) t_set(&x, 0, 80), t_set(&x, rows * V - 1, -80); /* label logit the max, the min */
            double *rl = malloc(sizeof(double) * (size_t)rows), *rg = malloc(sizeof(double) * (size_t)(rows * V));
            reference(&x, &lab, &dl, rows, V, rl, rg);
            pml_view fin[2] = {x, lab};
            if (t_run_ok(PML_OP_XENT, fin, 2, &loss, NULL, 0, 0)) t_compare_default("xent", &loss, rl);
            pml_view bin[4] = {x, lab, loss, dl};
            if (t_run_ok(PML_OP_XENT_GRAD, bin, 4, &g, NULL, 0, 0)) {
                if (t == PML_F32)
                    t_compare("xent_grad", &g, rg, 1e-6, 3e-5);
                else
                    t_compare("xent_grad", &g, rg, 1e-12, 1e-10);
            }
            free(rl), free(rg);
            t_free(&x), t_free(&lab), t_free(&loss), t_free(&dl), t_free(&g);
        }
}

void test_xent_refuses_labels_out_of_range_and_writes_nothing(void)
{
    int64_t dr[1] = {3}, dx[2] = {3, 65};
    pml_view x = t_new(PML_F32, 2, dx), lab = t_new(PML_I32, 1, dr), loss = t_new(PML_F32, 1, dr),
             dl = t_new(PML_F32, 1, dr), g = t_new(PML_F32, 2, dx);
    t_fill_rand(&x, -1, 1);
    t_fill_rand(&dl, -1, 1);
    int bad_values[2] = {65, -1};
    for (int op = 0; op < 2; op++)
        for (int b = 0; b < 2; b++) {
            pml_view *out = op ? &g : &loss;
            for (int64_t i = 0; i < t_numel(out); i++) t_set(out, i, 7); /* poison */
            t_set(&lab, 0, 1), t_set(&lab, 1, bad_values[b]), t_set(&lab, 2, 64);
            pml_view in[4] = {x, lab, loss, dl};
            pml_err err = {0};
            pml_opcode code = op ? PML_OP_XENT_GRAD : PML_OP_XENT;
            pml_status s = t_run(code, in, op ? 4 : 2, out, NULL, 0, 0, &err);
            char want[128];
            snprintf(want, sizeof want, "%s: index %d is out of range [0, 65)", pml_op_name(code), bad_values[b]);
            TCHECK(s == PML_ERR_INVALID_ARG && strcmp(err.msg, want) == 0, "%s: got status %d '%s', want '%s'",
                   pml_op_name(code), (int)s, err.msg, want);
            int written = 0;
            for (int64_t i = 0; i < t_numel(out); i++) written += t_get(out, i) != 7;
            TCHECK(written == 0, "%s wrote %d elements before refusing a label", pml_op_name(code), written);
        }
    t_free(&x), t_free(&lab), t_free(&loss), t_free(&dl), t_free(&g);
}

/* A diverged run's logits (NaN, ±inf) go through xent and xent_grad with no undefined
 * behaviour (the f32 exp once converted NaN to int: the sanitizer build reports that)
 * and come out NaN where the row is not finite: never a finite value that hides them.
 * Rows: a NaN logit, +inf, -inf as a non-label logit (finite: e^-inf adds about 0), all finite. */
void test_xent_keeps_nan_and_inf_logits_non_finite_without_undefined_behaviour(void)
{
    for (int ti = 0; ti < 2; ti++) {
        pml_dtype t = t_float_types[ti];
        int64_t dr[1] = {4}, dx[2] = {4, 33};
        pml_view x = t_new(t, 2, dx), lab = t_new(PML_I32, 1, dr), loss = t_new(t, 1, dr), dl = t_new(t, 1, dr),
                 g = t_new(t, 2, dx);
        t_fill_rand(&x, -3, 3);
        t_fill_rand(&dl, 0.5, 1);
        for (int r = 0; r < 4; r++) t_set(&lab, r, 2);
        t_set(&x, 0 * 33 + 17, NAN);
        t_set(&x, 1 * 33 + 30, INFINITY);
        t_set(&x, 2 * 33 + 5, -INFINITY);
        pml_view fin[2] = {x, lab}, bin[4] = {x, lab, loss, dl};
        if (t_run_ok(PML_OP_XENT, fin, 2, &loss, NULL, 0, 0) && t_run_ok(PML_OP_XENT_GRAD, bin, 4, &g, NULL, 0, 0)) {
            TCHECK(isnan(t_get(&loss, 0)) && isnan(t_get(&g, 0)) && isnan(t_get(&g, 17)),
                   "%s: a NaN logit gives loss %g, gradients %g, %g", pml_dtype_name(t), t_get(&loss, 0), t_get(&g, 0),
                   t_get(&g, 17));
            TCHECK(!isfinite(t_get(&loss, 1)) && !isfinite(t_get(&g, 33 + 30)), "%s: an inf logit gives loss %g",
                   pml_dtype_name(t), t_get(&loss, 1));
            TCHECK(isfinite(t_get(&loss, 2)) && fabs(t_get(&g, 2 * 33 + 5)) < 1e-30, "%s: a -inf logit gives loss %g, grad %g",
                   pml_dtype_name(t), t_get(&loss, 2), t_get(&g, 2 * 33 + 5));
            TCHECK(isfinite(t_get(&loss, 3)), "%s: a finite row stays finite", pml_dtype_name(t));
        }
        t_free(&x), t_free(&lab), t_free(&loss), t_free(&dl), t_free(&g);
    }
}
