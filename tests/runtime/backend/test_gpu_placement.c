/* test_gpu_placement.c — which GPU each stage device of a CUDA run lands on
 * (exec/backend.h, pml_backend_place), for a machine of a given GPU count, so that the
 * rule is checked on machines without a GPU too:
 *   a_plan_places_cuda_n_on_gpu_n_and_a_remap_moves_it: without a remap cuda:N is GPU N
 *     and a plan naming more GPUs than the machine has is refused, pointing at
 *     --devices; a remap moves each cuda:N, and one naming a GPU the machine lacks is
 *     refused;
 *   the_local_rank_puts_every_stage_device_on_its_gpu: --devices local (the launcher's
 *     local rank, pml_ranks_local_from_env) puts every stage device of a cuda plan, and
 *     of a cpu-placed plan run on CUDA, on that GPU, whatever cuda:N says, and a local
 *     rank past the machine's GPUs is refused naming the variable;
 *   the_local_rank_comes_from_the_launcher_that_started_the_process: mpirun's, then
 *     srun's, then torchrun's variable (torchrun's before srun's with MASTER_ADDR), a
 *     malformed one named, and none at all an error. */
#define _DEFAULT_SOURCE /* setenv */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/check.h"
#include "compile_plan.h"
#include "exec/backend.h"
#include "exec/ranks.h"

static pml_plan *placed(const char *place)
{
    char text[1024];
    snprintf(text, sizeof text,
             "import \"nn\"\n"
             "model m(x: f32[B, 8]) -> f32[B, 2] {\n"
             "    stage 0 { h = tanh(linear(x, 16) as a) }\n"
             "    stage 1 { g = tanh(linear(h, 16) as b) }\n"
             "    stage 2 { return linear(g, 2) as head }\n"
             "}\n"
             "train m {\n"
             "    data = classes(features = 8, classes = 2)\n"
             "    loss = cross_entropy\n"
             "    optimizer = sgd(lr = 0.1)\n"
             "    batch = 16, microbatches = 4\n"
             "    place = %s\n"
             "}\n",
             place);
    pml_err err = {0};
    pml_plan *pl = test_compile_plan("placed.pml", text, NULL, &err);
    if (!pl) fprintf(stderr, "place = %s does not compile: %s\n", place, err.msg);
    return pl;
}

static int says(const pml_err *err, const char *what)
{
    if (strstr(err->msg, what)) return 1;
    fprintf(stderr, "expected \"%s\" in: %s\n", what, err->msg);
    return 0;
}

static int a_plan_places_cuda_n_on_gpu_n_and_a_remap_moves_it(void)
{
    pml_plan *pl = placed("[cuda:0, cuda:2, cuda:1]");
    CHECK(pl != NULL);
    if (!pl) return 1;
    int gpu[3] = {-1, -1, -1};
    pml_err err = {0};
    CHECK(pml_backend_place(pl, NULL, 3, gpu, &err) == PML_OK && gpu[0] == 0 && gpu[1] == 2 && gpu[2] == 1);
    CHECK(pml_backend_place(pl, NULL, 2, gpu, &err) == PML_ERR_UNSUPPORTED && says(&err, "this machine has 2 GPUs") &&
          says(&err, "--devices 0,0,0") && says(&err, "--devices local"));
    pml_gpu_map map = {.n = 3, .gpu = {1, 0, 1}};
    CHECK(pml_backend_place(pl, &map, 2, gpu, &err) == PML_OK && gpu[0] == 1 && gpu[1] == 1 && gpu[2] == 0);
    map.gpu[2] = 2;
    CHECK(pml_backend_place(pl, &map, 2, gpu, &err) == PML_ERR_INVALID_ARG && says(&err, "cuda:2 onto GPU 2"));
    pml_plan_free(pl);
    return check_summary("a_plan_places_cuda_n_on_gpu_n_and_a_remap_moves_it");
}

static int the_local_rank_puts_every_stage_device_on_its_gpu(void)
{
    pml_plan *gpus = placed("[cuda:0, cuda:1, cuda:2]"), *cpu = placed("cpu");
    CHECK(gpus && cpu);
    if (!gpus || !cpu) return 1;
    pml_gpu_map local = {.local = 1, .local_rank = 1, .local_from = "LOCAL_RANK"};
    int gpu[3] = {-1, -1, -1};
    pml_err err = {0};
    /* Two GPUs on this host: the plan's cuda:2 does not exist here, the local rank's does. */
    CHECK(pml_backend_place(gpus, &local, 2, gpu, &err) == PML_OK && gpu[0] == 1 && gpu[1] == 1 && gpu[2] == 1);
    gpu[0] = gpu[1] = gpu[2] = -1;
    CHECK(pml_backend_place(cpu, &local, 2, gpu, &err) == PML_OK && gpu[0] == 1 && gpu[1] == 1 && gpu[2] == 1);
    local.local_rank = 2;
    CHECK(pml_backend_place(gpus, &local, 2, gpu, &err) == PML_ERR_INVALID_ARG && says(&err, "LOCAL_RANK is 2") &&
          says(&err, "this machine has 2 GPUs"));
    /* The same through the whole choice: on this machine a GPU-less one refuses it as
     * any CUDA run, naming no GPU, and a CPU run refuses the setting it cannot apply. */
    pml_backend got;
    local.local_rank = 0;
    CHECK(pml_backend_select(PML_BACKEND_CPU, gpus, &local, &got, NULL, &err) == PML_ERR_INVALID_ARG &&
          says(&err, "this run is on the CPU: leave --devices out"));
    pml_plan_free(gpus), pml_plan_free(cpu);
    return check_summary("the_local_rank_puts_every_stage_device_on_its_gpu");
}

static int the_local_rank_comes_from_the_launcher_that_started_the_process(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "LOCAL_RANK", "MASTER_ADDR"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) unsetenv(vars[i]);
    int local = -1;
    const char *from = NULL;
    pml_err err = {0};
    CHECK(pml_ranks_local_from_env(&local, &from, &err) == PML_ERR_INVALID_ARG &&
          says(&err, "LOCAL_RANK from torchrun"));
    setenv("LOCAL_RANK", "3", 1);
    CHECK(pml_ranks_local_from_env(&local, &from, &err) == PML_OK && local == 3 && !strcmp(from, "LOCAL_RANK"));
    setenv("SLURM_LOCALID", "1", 1);
    CHECK(pml_ranks_local_from_env(&local, &from, &err) == PML_OK && local == 1 && !strcmp(from, "SLURM_LOCALID"));
    setenv("MASTER_ADDR", "node7", 1); /* torchrun inside a batch job */
    CHECK(pml_ranks_local_from_env(&local, &from, &err) == PML_OK && local == 3 && !strcmp(from, "LOCAL_RANK"));
    setenv("OMPI_COMM_WORLD_LOCAL_RANK", "2", 1);
    CHECK(pml_ranks_local_from_env(&local, &from, &err) == PML_OK && local == 2 &&
          !strcmp(from, "OMPI_COMM_WORLD_LOCAL_RANK"));
    setenv("OMPI_COMM_WORLD_LOCAL_RANK", "-1", 1);
    CHECK(pml_ranks_local_from_env(&local, &from, &err) == PML_ERR_INVALID_ARG &&
          says(&err, "OMPI_COMM_WORLD_LOCAL_RANK is '-1'"));
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) unsetenv(vars[i]);
    return check_summary("the_local_rank_comes_from_the_launcher_that_started_the_process");
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(void);
    } tests[] = {
        {"a_plan_places_cuda_n_on_gpu_n_and_a_remap_moves_it", a_plan_places_cuda_n_on_gpu_n_and_a_remap_moves_it},
        {"the_local_rank_puts_every_stage_device_on_its_gpu", the_local_rank_puts_every_stage_device_on_its_gpu},
        {"the_local_rank_comes_from_the_launcher_that_started_the_process",
         the_local_rank_comes_from_the_launcher_that_started_the_process},
    };
    if (argc != 2) return fprintf(stderr, "usage: test_gpu_placement NAME\n"), 2;
    for (size_t t = 0; t < sizeof tests / sizeof *tests; t++)
        if (!strcmp(argv[1], tests[t].name)) return tests[t].fn();
    fprintf(stderr, "no test named %s\n", argv[1]);
    return 2;
}
