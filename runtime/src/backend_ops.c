/* backend_ops.c — the thin wrappers over a backend's table (see backend_ops.h): the one
 * place that knows which slots are optional and what their absence means. */
#include "backend_ops.h"

#include <string.h>


pml_status pml_backend_create(const pml_backend_ops *ops, const pml_plan *plan, const pml_backend_conf *conf,
                              pml_backend_inst *out, pml_err *err)
{
    *out = (pml_backend_inst){0};
    if (!ops || !ops->create || !ops->destroy || !ops->begin || !ops->forward || !ops->backward || !ops->grad_sq ||
        !ops->update || !ops->host_value || !ops->host_param)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "backend '%s' lacks a required operation",
                           ops && ops->name ? ops->name : "?");
    for (int s = 0; s < plan->n_stages && !ops->backward_half; s++)
        for (int i = 0; i < plan->n_instr[s]; i++)
            if (plan->instr[s][i].kind == PML_PLAN_I_BWD_INPUT || plan->instr[s][i].kind == PML_PLAN_I_BWD_WEIGHT)
                return pml_err_set(err, PML_ERR_UNSUPPORTED,
                                   "the %s backend runs whole backward passes only, and this plan's timetable splits "
                                   "them into input- and weight-gradient halves (schedule = %s): train it with "
                                   "--backend cpu, or choose schedule = %s",
                                   ops->name ? ops->name : "?", pml_plan_schedule_name((int)plan->conf.schedule),
                                   plan->conf.chunks > 1 ? "interleaved_1f1b" : "1f1b");
    pml_status st = ops->create(plan, conf, &out->ctx, err);
    if (!st) out->ops = ops, out->plan = plan;
    return st;
}

void pml_backend_destroy(pml_backend_inst *b)
{
    if (b->ops) b->ops->destroy(b->ctx);
    *b = (pml_backend_inst){0};
}

pml_status pml_backend_begin(pml_backend_inst *b, int64_t step, int train, pml_err *err)
{
    return b->ops->begin(b->ctx, step, train, err);
}

pml_status pml_backend_forward(pml_backend_inst *b, int stage, int64_t mb, pml_backend_fwd_mode mode, pml_err *err)
{
    return b->ops->forward(b->ctx, stage, mb, mode, err);
}

pml_status pml_backend_backward(pml_backend_inst *b, int stage, int64_t mb, pml_err *err)
{
    return b->ops->backward(b->ctx, stage, mb, err);
}

pml_status pml_backend_backward_half(pml_backend_inst *b, int stage, int64_t mb, pml_backend_bwd_half half,
                                     pml_err *err)
{
    if (!b->ops->backward_half)
        return pml_err_set(err, PML_ERR_UNSUPPORTED, "the %s backend runs whole backward passes only",
                           b->ops->name ? b->ops->name : "?");
    return b->ops->backward_half(b->ctx, stage, mb, half, err);
}

pml_status pml_backend_grad_sq(pml_backend_inst *b, int stage, double *sq, pml_err *err)
{
    return b->ops->grad_sq(b->ctx, stage, sq, err);
}

pml_status pml_backend_update(pml_backend_inst *b, int stage, double lr, double clip, pml_err *err)
{
    return b->ops->update(b->ctx, stage, lr, clip, err);
}

pml_status pml_backend_sync(pml_backend_inst *b, int stage, pml_err *err)
{
    return b->ops->sync ? b->ops->sync(b->ctx, stage, err) : PML_OK;
}

void *pml_backend_host_value(pml_backend_inst *b, pml_backend_value what, int k, int64_t mb)
{
    return b->ops->host_value(b->ctx, what, k, mb);
}

pml_status pml_backend_upload(pml_backend_inst *b, pml_backend_value what, int k, int64_t mb, pml_err *err)
{
    return b->ops->upload ? b->ops->upload(b->ctx, what, k, mb, err) : PML_OK;
}

pml_status pml_backend_download(pml_backend_inst *b, pml_backend_value what, int k, int64_t mb, pml_err *err)
{
    return b->ops->download ? b->ops->download(b->ctx, what, k, mb, err) : PML_OK;
}

float *pml_backend_host_param(pml_backend_inst *b, int param, int which)
{
    return b->ops->host_param(b->ctx, param, which);
}

pml_status pml_backend_params_download(pml_backend_inst *b, pml_err *err)
{
    return b->ops->params_download ? b->ops->params_download(b->ctx, err) : PML_OK;
}

pml_status pml_backend_params_upload(pml_backend_inst *b, pml_err *err)
{
    return b->ops->params_upload ? b->ops->params_upload(b->ctx, err) : PML_OK;
}

pml_status pml_backend_boundary(pml_backend_inst *b, int stage, int kind, int64_t mb, pml_backend_buf *out, int cap,
                                int *n, pml_err *err)
{
    *n = 0;
    if (!b->ops->boundary)
        return pml_err_set(err, PML_ERR_UNSUPPORTED, "backend '%s' cannot list a message's tensors", b->ops->name);
    if (stage < 0 || stage >= b->plan->conf.stages || (kind != PML_MSG_ACT && kind != PML_MSG_GRAD) || mb < 0 ||
        mb >= b->plan->conf.microbatches)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "no message of kind %d from stage %d for micro-batch %lld", kind,
                           stage, (long long)mb);
    return b->ops->boundary(b->ctx, stage, kind, mb, out, cap, n, err);
}

pml_status pml_backend_sum_ties(pml_backend_inst *b, pml_err *err)
{
    if (!b->ops->sum_ties)
        return pml_err_set(err, PML_ERR_UNSUPPORTED, "backend '%s' cannot sum tied weights' gradients", b->ops->name);
    return b->ops->sum_ties(b->ctx, err);
}

pml_status pml_backend_grads(pml_backend_inst *b, int stage, pml_backend_buf *out, int cap, int *n, pml_err *err)
{
    *n = 0;
    if (!b->ops->grads)
        return pml_err_set(err, PML_ERR_UNSUPPORTED, "backend '%s' cannot list its gradients", b->ops->name);
    return b->ops->grads(b->ctx, stage, out, cap, n, err);
}

pml_status pml_backend_copy_buf(pml_backend_inst *b, int stage, const pml_backend_buf *buf, void *host, int to_host,
                                const char *why, pml_err *err)
{
    if (buf->device == PML_DEVICE_HOST) {
        if (buf->bytes && buf->data != host) memcpy(to_host ? host : buf->data, to_host ? buf->data : host, buf->bytes);
        return PML_OK;
    }
    if (!b->ops->copy_buf)
        return pml_err_set(err, PML_ERR_UNSUPPORTED, "backend '%s' cannot copy its device buffers to the host (%s)",
                           b->ops->name, why);
    return b->ops->copy_buf(b->ctx, stage, buf, host, to_host, err);
}

pml_status pml_backend_phase(pml_backend_inst *b, int64_t step, struct pml_phase **out, pml_err *err)
{
    *out = NULL;
    if (!b->ops->phase)
        return pml_err_set(err, PML_ERR_UNSUPPORTED, "backend '%s' cannot give its freeze state", b->ops->name);
    return b->ops->phase(b->ctx, step, out, err);
}

pml_status pml_backend_loss_scale(pml_backend_inst *b, double scale, pml_err *err)
{
    if (b->ops->loss_scale) return b->ops->loss_scale(b->ctx, scale, err);
    if (scale == 1) return PML_OK;
    return pml_err_set(err, PML_ERR_UNSUPPORTED, "backend '%s' cannot scale the loss (precision = f16 needs it)",
                       b->ops->name);
}

const char *pml_backend_precision_note(pml_backend_inst *b)
{
    return b->ops->precision_note ? b->ops->precision_note(b->ctx) : NULL;
}

size_t pml_backend_memory_total(const pml_backend_memory *m)
{
    return m->values + m->grads + m->optimizer + m->derived + m->scratch + m->temporaries;
}

int pml_backend_memory_of(pml_backend_inst *b, int stage, pml_backend_memory *out)
{
    memset(out, 0, sizeof *out);
    if (!b->ops->memory || stage < 0 || stage >= (int)b->plan->conf.stages) return 0;
    b->ops->memory(b->ctx, stage, out);
    return 1;
}

pml_status pml_backend_param_int8(pml_backend_inst *b, int param, const int8_t *q, const float *scale, float in_scale,
                                  int *served, pml_err *err)
{
    *served = 0;
    if (param < 0 || param >= b->plan->n_params) return pml_err_set(err, PML_ERR_INVALID_ARG, "no parameter %d", param);
    return b->ops->param_int8 ? b->ops->param_int8(b->ctx, param, q, scale, in_scale, served, err) : PML_OK;
}

pml_status pml_backend_observe_linear(pml_backend_inst *b, int param, int *observed, pml_err *err)
{
    *observed = 0;
    if (param < 0 || param >= b->plan->n_params) return pml_err_set(err, PML_ERR_INVALID_ARG, "no parameter %d", param);
    return b->ops->observe_linear ? b->ops->observe_linear(b->ctx, param, observed, err) : PML_OK;
}

pml_status pml_backend_observed_absmax(pml_backend_inst *b, int param, float *absmax, pml_err *err)
{
    *absmax = 0;
    if (param < 0 || param >= b->plan->n_params) return pml_err_set(err, PML_ERR_INVALID_ARG, "no parameter %d", param);
    if (!b->ops->observed_absmax)
        return pml_err_set(err, PML_ERR_UNSUPPORTED, "this backend cannot observe activations");
    return b->ops->observed_absmax(b->ctx, param, absmax, err);
}
