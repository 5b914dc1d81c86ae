/* pmlc.c — the command line: check programs, print their stage plans, build plan
 * files, train and infer.
 *
 * Exit status: 0 success, 1 errors in the input, 2 wrong usage. Help and version go
 * to stdout; diagnostics to stderr. */
#define _DEFAULT_SOURCE /* isatty */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build_cmd.h"
#include "cli_util.h"
#include "export_cmd.h"
#include "infer_cmd.h"
#include "pml.h"
#include "pmlc.h"
#include "quantize_cmd.h"
#include "train_cmd.h"

static const char usage_text[] =
    "usage: pmlc <command> [options] FILE...\n"
    "\n"
    "commands:\n"
    "  check FILE...     parse and check PML programs\n"
    "  plan FILE         print the stage plan of a program's model\n"
    "  build FILE -o OUT write the model's plan file (what libpml loads and trains) to OUT\n"
    "  train FILE|PLAN   train the model on the CPU as a pipeline; write its weights with --out\n"
    "  run FILE          build and train in one go: the same as 'train FILE' (same options)\n"
    "  infer FILE|PLAN --weights W --input X.npy --output Y.npy\n"
    "                    run the model forward (dropout off) over the rows of X; write its outputs to Y\n"
    "  export FILE|PLAN --weights W -o MODEL.onnx\n"
    "                    write the model forward with its weights as an ONNX model (opset 17), for ONNX\n"
    "                    Runtime, TensorRT or a browser; the batch dimension is the plan's micro-batch\n"
    "  quantize FILE|PLAN --weights W [--layers P,...] [--calibrate X.npy] -o Q.safetensors\n"
    "                    int8 weights (symmetric, one f32 scale per output channel) of the linear layers\n"
    "                    that freeze-style patterns select (default: all); the rest copied as is;\n"
    "                    --calibrate X.npy: static activation scales (max |x| / 127 of each layer's input\n"
    "                    over the f32 forward of X's rows) instead of per-row dynamic ones\n"
    "  ops               list the primitive operations\n"
    "  version           print the version\n"
    "  help              print this help\n"
    "\n"
    "options:\n"
    "  -I DIR              look for imports in DIR too (repeatable)\n"
    "  --set KEY=VALUE     override a train field, e.g. --set batch=128 (repeatable)\n"
    "  --model NAME        the model to plan (default: the trained one)\n"
    "  --json              plan as JSON (format: docs/plan-json.md)\n"
    "  --dot               plan as a Graphviz drawing\n"
    "  --timeline FILE     plan: also draw the simulated timetable (one row per stage) as SVG into FILE;\n"
    "                      train: draw one measured step (the median after the first) the same way\n"
    "  --color=WHEN        colour diagnostics: auto (default), always, never; NO_COLOR is honoured\n"
    "  --max-errors N      stop after N errors (default 20)\n"
    "  -o FILE             build: the plan file; export: the ONNX file; quantize: the weights (each replaced\n"
    "                      atomically)\n"
    "  --arch LIST         build: GPU targets for the kernels, e.g. sm_80,sm_90,compute_90 (the default when\n"
    "                      NVRTC is found), or none; compiled kernels are cached (PML_CACHE_DIR, PML_CACHE=0)\n"
    "\n"
    "train options:\n"
    "  --steps N           how many steps (default: the train block's steps)\n"
    "  --out DIR           write the final checkpoint to DIR: model.safetensors (the weights; --steps 0: the\n"
    "                      initial ones), optimizer.safetensors, trainer.json; and one every checkpoint_every\n"
    "                      steps (train block) to DIR/step-NNNNNN/; ranks write the tensors as Hugging Face\n"
    "                      shards (model-0000k-of-0000n.safetensors and an index) in a folder all can reach\n"
    "  --init W            start from these weights (every parameter, by plan name) instead of the initialisers:\n"
    "                      a .safetensors file, a shard index (.safetensors.index.json) or a checkpoint folder\n"
    "  --resume DIR        continue the checkpoint in DIR (weights, optimizer state, seed, step) to --steps in all\n"
    "  --seed S            seed for initialisation and dropout (default: the train block's seed)\n"
    "  --backend B         where to run: cpu, cuda or auto (default: auto, where the train block's `place`\n"
    "                      says: the CPU for cpu devices, GPUs for cuda:N, an error when there is none)\n"
    "  --devices LIST      the GPU each of the plan's cuda:0, cuda:1, ... runs on, e.g. 0,0,0,0 runs a plan\n"
    "                      placed on four GPUs on GPU 0 (default: cuda:N on GPU N); local: every stage of this\n"
    "                      process on its launcher's local rank's GPU (LOCAL_RANK, OMPI_COMM_WORLD_LOCAL_RANK or\n"
    "                      SLURM_LOCALID), torchrun's one GPU per process\n"
    "  --threads N         CPU threads in all (default: every CPU)\n"
    "  --metrics FILE      one JSON record per step: step, loss, lr, grad_norm, samples_per_s, step_ms (and with\n"
    "                      f16, loss_scale and skipped); and one per evaluation and re-cut (README: \"Metrics\n"
    "                      records\")\n"
    "  --eval N            after training, evaluate on N batches: loss, and accuracy for classes; from the\n"
    "                      held-out data (eval_data, holdout, a generator's fresh samples), else from training\n"
    "                      rows, and said so; also the batches of each eval_every evaluation\n"
    "  --trace FILE        a timeline of every stage (Chrome trace JSON, opens in Perfetto) and the measured bubble\n"
    "  --quiet             no progress lines\n"
    "  --check-numerics    check every op's output, forward and backward, and stop at the first NaN or inf,\n"
    "                      naming the op, its .pml line, stage, micro-batch and step (CPU backend; slower)\n"
    "  --rank R --world N  this process is rank R of N (default: from mpirun, srun, or RANK/WORLD_SIZE); each\n"
    "                      rank runs its share of the stages: mpirun -np 4 pmlc train FILE (built with MPI), or\n"
    "                      torchrun --nproc-per-node 4 --no-python pmlc train FILE (over TCP: MASTER_ADDR/PORT)\n"
    "  --replicas R        data parallel: the ranks form R pipelines, each training on its share of every batch\n"
    "                      (overrides the model's place = auto(..., replicas = R))\n"
    "  --peer-timeout S    seconds a rank may stay silent before the others give up naming it (default 60)\n"
    "\n"
    "infer options:\n"
    "  --weights W         the weights: a model.safetensors, a shard index, or a checkpoint folder (train --out)\n"
    "  --input X.npy       N rows of the model input (one-input models); cut into micro-batches of the plan's\n"
    "                      size, the last one padded; types convert as the training data's do\n"
    "  --output Y.npy      write the outputs, f32 [N, output dims...] (replaced atomically)\n"
    "  --bench             also time passes over X (at least 1 s): latency per micro-batch (wall, CPU), rows/s\n"
    "                      (--weights may be a `pmlc quantize` file: its linear layers then compute with int8\n"
    "                      products on the CPU; --bench with each weights file compares f32 and int8)\n"
    "  --trace FILE        a Chrome trace JSON of the timed forwards (with --bench: its first 200; without: the\n"
    "                      run's first 200 micro-batches): a span per op or fused kernel and per thread, with\n"
    "                      CPU times (CPU backend)\n"
    "  --backend B         cpu, cuda or auto, as for train\n"
    "  --devices LIST      the GPUs of the plan's cuda:N, or local, as for train\n"
    "  --threads N         CPU threads (default: every CPU)\n"
    "  -h, --help          print this help\n"
    "  --version           print the version\n"
    "\n"
    "environment:\n"
    "  PML_PATH            ':'-separated folders searched for imports after -I\n"
    "\n"
    "exit status: 0 success, 1 errors in the input, 2 wrong usage\n";

static int usage_error(const char *fmt, const char *arg)
{
    fputs("pmlc: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\nusage: pmlc <command> [options] FILE...  (pmlc help for more)\n", stderr);
    return 2;
}

static void print_ops(void)
{
    printf("%-12s %-12s %-6s %s\n", "op", "class", "inputs", "meaning");
    pmlc_op_desc o;
    for (int i = 0; !pmlc_op_describe(i, &o); i++) {
        char arity[16];
        if (o.max_inputs < 0)
            snprintf(arity, sizeof arity, "%d+", o.min_inputs);
        else
            snprintf(arity, sizeof arity, "%d", o.min_inputs);
        printf("%-12s %-12s %-6s %s\n", o.name, o.op_class, arity, o.doc);
    }
}

/* Value of an option written as "--opt VALUE" or "--opt=VALUE". */
static const char *option_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (!strncmp(argv[*i], name, n) && argv[*i][n] == '=') return argv[*i] + n + 1;
    if (!strcmp(argv[*i], name)) return *i + 1 < argc ? argv[++*i] : NULL;
    return NULL;
}

/* What the command line asked for; the arrays hold pointers into argv. */
typedef struct args {
    const char *cmd, *color, *model;
    const char **files, **includes, **sets;
    int n_files, n_inc, n_sets, max_errors;
    pmlc_plan_format fmt;
    int64_t steps, seed, eval;
    int threads, quiet;
    int rank, world;     /* train's --rank, --world (-1: from the launcher) */
    double peer_timeout; /* train's --peer-timeout */
    int replicas;        /* train's --replicas */
    int check_numerics;  /* train's --check-numerics */
    pml_backend backend; /* train/run/infer --backend */
    int backend_given;
    int gpus[1024], n_gpus; /* train/run/infer --devices (n_gpus 0: not given) */
    int devices_local;      /* --devices local */
    const char *out, *metrics, *trace;
    const char *timeline;                    /* plan's --timeline FILE.svg */
    const char *init, *resume;               /* train's --init W.safetensors, --resume DIR */
    const char *output;                      /* build's -o */
    const char *arch;                        /* build's --arch (NULL: the default) */
    const char *weights, *input, *infer_out; /* infer's --weights, --input, --output */
    const char *layers, *calibrate;          /* quantize's --layers, --calibrate */
    int bench;                               /* infer's --bench */
    int argc;                                /* the command line as typed (train's resume line repeats it) */
    char *const *argv;
} args;

/* A non-negative integer option value; -1 when it is not one. */
static int64_t count_value(const char *v)
{
    char *end;
    errno = 0;
    long long n = v ? strtoll(v, &end, 10) : -1;
    return !v || *end || end == v || n < 0 || errno ? -1 : (int64_t)n;
}

/* --devices LIST: "0,0,1,1", one GPU number from 0 per entry, 1 to 1024 of them (the
 * library checks them against the plan and the machine), or "local" (the launcher's
 * local rank's GPU for every stage device; the library reads it). The last --devices
 * counts. Returns 0, or 1 when malformed. */
static int parse_devices(const char *v, args *a)
{
    a->n_gpus = 0, a->devices_local = 0;
    if (v && !strcmp(v, "local")) return a->devices_local = 1, 0;
    if (!v || !*v) return 1;
    for (const char *p = v;; p++) {
        char *end;
        errno = 0;
        long n = *p >= '0' && *p <= '9' ? strtol(p, &end, 10) : -1;
        if (n < 0 || n > 1 << 16 || errno || a->n_gpus == 1024 || (*end && *end != ',')) return a->n_gpus = 0, 1;
        a->gpus[a->n_gpus++] = (int)n;
        if (!*end) return 0;
        p = end;
    }
}

/* Parses argv. Returns -1 to go on, or the exit status when the command line has
 * been answered already (help, version, a usage error). */
static int parse_args(int argc, char **argv, args *a)
{
    int only_files = 0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i], *v;
        if (only_files || s[0] != '-' || !s[1]) {
            if (!a->cmd)
                a->cmd = s;
            else
                a->files[a->n_files++] = s;
        } else if (!strcmp(s, "--")) {
            only_files = 1;
        } else if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
            fputs(usage_text, stdout);
            return 0;
        } else if (!strcmp(s, "--version")) {
            printf("pmlc %s\n", pmlc_version());
            return 0;
        } else if (!strcmp(s, "--json")) {
            a->fmt = PMLC_PLAN_JSON;
        } else if (!strcmp(s, "--dot")) {
            a->fmt = PMLC_PLAN_DOT;
        } else if (!strncmp(s, "-I", 2) && s[2]) {
            a->includes[a->n_inc++] = s + 2;
        } else if (!strcmp(s, "-I")) {
            if (i + 1 >= argc) return usage_error("%s needs a folder", s);
            a->includes[a->n_inc++] = argv[++i];
        } else if (!strncmp(s, "--set", 5) && (s[5] == 0 || s[5] == '=')) {
            if (!(v = option_value(argc, argv, &i, "--set"))) return usage_error("%s needs KEY=VALUE", s);
            a->sets[a->n_sets++] = v;
        } else if (!strncmp(s, "--model", 7) && (s[7] == 0 || s[7] == '=')) {
            if (!(v = option_value(argc, argv, &i, "--model")) || !*v) return usage_error("%s needs a model name", s);
            a->model = v;
        } else if (!strncmp(s, "--max-errors", 12) && (s[12] == 0 || s[12] == '=')) {
            char *end;
            if (!(v = option_value(argc, argv, &i, "--max-errors"))) return usage_error("%s needs a number", s);
            long n = strtol(v, &end, 10);
            if (*end || end == v || n < 1 || n > 1000000)
                return usage_error("--max-errors needs a number from 1, not '%s'", v);
            a->max_errors = (int)n;
        } else if (!strncmp(s, "--steps", 7) && (s[7] == 0 || s[7] == '=')) {
            if ((a->steps = count_value(option_value(argc, argv, &i, "--steps"))) < 0)
                return usage_error("%s needs a number of steps (0 or more)", s);
        } else if (!strncmp(s, "--seed", 6) && (s[6] == 0 || s[6] == '=')) {
            if ((a->seed = count_value(option_value(argc, argv, &i, "--seed"))) < 0)
                return usage_error("%s needs a non-negative integer", s);
        } else if (!strncmp(s, "--backend", 9) && (s[9] == 0 || s[9] == '=')) {
            if (!(v = option_value(argc, argv, &i, "--backend")) || pml_backend_parse(v, &a->backend))
                return usage_error("--backend takes cpu, cuda or auto, not '%s'", v ? v : "");
            a->backend_given = 1;
        } else if (!strncmp(s, "--devices", 9) && (s[9] == 0 || s[9] == '=')) {
            if (parse_devices(v = option_value(argc, argv, &i, "--devices"), a))
                return usage_error("--devices takes GPU numbers from 0, comma-separated (0,0,1,1), or local, not '%s'",
                                   v ? v : "");
        } else if (!strncmp(s, "--threads", 9) && (s[9] == 0 || s[9] == '=')) {
            int64_t n = count_value(option_value(argc, argv, &i, "--threads"));
            if (n < 1 || n > 4096) return usage_error("%s needs a number of threads from 1", s);
            a->threads = (int)n;
        } else if (!strncmp(s, "--rank", 6) && (s[6] == 0 || s[6] == '=')) {
            int64_t n = count_value(option_value(argc, argv, &i, "--rank"));
            if (n < 0 || n >= (1 << 20)) return usage_error("%s needs a rank number from 0", s);
            a->rank = (int)n;
        } else if (!strncmp(s, "--world", 7) && (s[7] == 0 || s[7] == '=')) {
            int64_t n = count_value(option_value(argc, argv, &i, "--world"));
            if (n < 1 || n > (1 << 20)) return usage_error("%s needs a number of processes from 1", s);
            a->world = (int)n;
        } else if (!strncmp(s, "--replicas", 10) && (s[10] == 0 || s[10] == '=')) {
            int64_t n = count_value(option_value(argc, argv, &i, "--replicas"));
            if (n < 1 || n > (1 << 20)) return usage_error("%s needs a number of pipelines from 1", s);
            a->replicas = (int)n;
        } else if (!strncmp(s, "--peer-timeout", 14) && (s[14] == 0 || s[14] == '=')) {
            int64_t n = count_value(option_value(argc, argv, &i, "--peer-timeout"));
            if (n < 1 || n > 86400) return usage_error("%s needs a number of seconds from 1", s);
            a->peer_timeout = (double)n;
        } else if (!strncmp(s, "--out", 5) && (s[5] == 0 || s[5] == '=')) {
            if (!(a->out = option_value(argc, argv, &i, "--out")) || !*a->out)
                return usage_error("%s needs a folder", s);
        } else if (!strncmp(s, "--init", 6) && (s[6] == 0 || s[6] == '=')) {
            if (!(a->init = option_value(argc, argv, &i, "--init")) || !*a->init)
                return usage_error("%s needs a safetensors file", s);
        } else if (!strncmp(s, "--resume", 8) && (s[8] == 0 || s[8] == '=')) {
            if (!(a->resume = option_value(argc, argv, &i, "--resume")) || !*a->resume)
                return usage_error("%s needs a checkpoint folder", s);
        } else if (!strncmp(s, "--metrics", 9) && (s[9] == 0 || s[9] == '=')) {
            if (!(a->metrics = option_value(argc, argv, &i, "--metrics")) || !*a->metrics)
                return usage_error("%s needs a file", s);
        } else if (!strncmp(s, "--weights", 9) && (s[9] == 0 || s[9] == '=')) {
            if (!(a->weights = option_value(argc, argv, &i, "--weights")) || !*a->weights)
                return usage_error("%s needs a safetensors file or a checkpoint folder", s);
        } else if (!strncmp(s, "--input", 7) && (s[7] == 0 || s[7] == '=')) {
            if (!(a->input = option_value(argc, argv, &i, "--input")) || !*a->input)
                return usage_error("%s needs a .npy file", s);
        } else if (!strncmp(s, "--output", 8) && (s[8] == 0 || s[8] == '=')) {
            if (!(a->infer_out = option_value(argc, argv, &i, "--output")) || !*a->infer_out)
                return usage_error("%s needs a .npy file", s);
        } else if (!strncmp(s, "--arch", 6) && (s[6] == 0 || s[6] == '=')) {
            if (!(a->arch = option_value(argc, argv, &i, "--arch")) || !*a->arch)
                return usage_error("%s needs GPU targets (sm_80,sm_90,...) or none", s);
        } else if (!strncmp(s, "--layers", 8) && (s[8] == 0 || s[8] == '=')) {
            if (!(v = option_value(argc, argv, &i, "--layers")) || !*v) return usage_error("%s needs name patterns", s);
            if (a->layers) return usage_error("%s", "--layers given twice: list the patterns comma-separated");
            a->layers = v;
        } else if (!strncmp(s, "--calibrate", 11) && (s[11] == 0 || s[11] == '=')) {
            if (!(a->calibrate = option_value(argc, argv, &i, "--calibrate")) || !*a->calibrate)
                return usage_error("%s needs a .npy file", s);
        } else if (!strcmp(s, "--bench")) {
            a->bench = 1;
        } else if (!strncmp(s, "-o", 2)) {
            if (s[2])
                a->output = s + 2;
            else if (i + 1 < argc)
                a->output = argv[++i];
            if (!a->output || !*a->output) return usage_error("%s needs a file", "-o");
        } else if (!strncmp(s, "--eval", 6) && (s[6] == 0 || s[6] == '=')) {
            if ((a->eval = count_value(option_value(argc, argv, &i, "--eval"))) < 1 || a->eval > 1000000)
                return usage_error("%s needs a number of batches from 1", s);
        } else if (!strncmp(s, "--timeline", 10) && (s[10] == 0 || s[10] == '=')) {
            if (!(a->timeline = option_value(argc, argv, &i, "--timeline")) || !*a->timeline)
                return usage_error("%s needs a file", s);
        } else if (!strncmp(s, "--trace", 7) && (s[7] == 0 || s[7] == '=')) {
            if (!(a->trace = option_value(argc, argv, &i, "--trace")) || !*a->trace)
                return usage_error("%s needs a file", s);
        } else if (!strcmp(s, "--quiet")) {
            a->quiet = 1;
        } else if (!strcmp(s, "--check-numerics")) {
            a->check_numerics = 1;
        } else if (!strcmp(s, "--color")) {
            a->color = "always";
        } else if (!strncmp(s, "--color=", 8)) {
            a->color = s + 8;
            if (strcmp(a->color, "auto") && strcmp(a->color, "always") && strcmp(a->color, "never"))
                return usage_error("--color takes auto, always or never, not '%s'", a->color);
        } else {
            return usage_error("unknown option '%s'", s);
        }
    }
    if (!a->cmd) return usage_error("%s", "no command given");
    if (!strcmp(a->cmd, "help")) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (!strcmp(a->cmd, "version")) {
        printf("pmlc %s\n", pmlc_version());
        return 0;
    }
    if (!strcmp(a->cmd, "ops")) {
        print_ops();
        return 0;
    }
    if (strcmp(a->cmd, "plan") && strcmp(a->cmd, "check") && strcmp(a->cmd, "train") && strcmp(a->cmd, "build") &&
        strcmp(a->cmd, "run") && strcmp(a->cmd, "infer") && strcmp(a->cmd, "export") && strcmp(a->cmd, "quantize"))
        return usage_error("unknown command '%s'", a->cmd);
    if (a->n_files == 0) return usage_error("'%s' needs a file", a->cmd);
    if (!strcmp(a->cmd, "build") && !a->output) return usage_error("'%s' needs -o OUT.plan", a->cmd);
    int export = !strcmp(a->cmd, "export"), quantize = !strcmp(a->cmd, "quantize");
    if (export && !a->output) return usage_error("'%s' needs -o MODEL.onnx", a->cmd);
    if (quantize && !a->output) return usage_error("'%s' needs -o Q.safetensors", a->cmd);
    if (strcmp(a->cmd, "build") && !export && !quantize && a->output)
        return usage_error("-o is for 'build', 'export' and 'quantize', not '%s'", a->cmd);
    if (strcmp(a->cmd, "build") && a->arch) return usage_error("--arch is for 'build', not '%s'", a->cmd);
    if (strcmp(a->cmd, "check") && a->n_files > 1) return usage_error("'%s' takes one file", a->cmd);
    int infer = !strcmp(a->cmd, "infer"), train = !strcmp(a->cmd, "train") || !strcmp(a->cmd, "run");
    /* Every option is used by the command given or refused: none is accepted and ignored. */
    const struct {
        const char *name;
        int given, taken;
    } only[] = {
        {"--steps", a->steps >= 0, train},
        {"--seed", a->seed >= 0, train},
        {"--rank", a->rank >= 0, train},
        {"--world", a->world > 0, train},
        {"--replicas", a->replicas > 0, train},
        {"--peer-timeout", a->peer_timeout > 0, train},
        {"--out", a->out != NULL, train},
        {"--init", a->init != NULL, train},
        {"--resume", a->resume != NULL, train},
        {"--metrics", a->metrics != NULL, train},
        {"--trace", a->trace != NULL, train || infer},
        {"--eval", a->eval > 0, train},
        {"--check-numerics", a->check_numerics, train},
        {"--threads", a->threads > 0, train || infer},
        {"--backend", a->backend_given, train || infer},
        {"--devices", a->n_gpus > 0 || a->devices_local, train || infer},
        {"--input", a->input != NULL, infer},
        {"--output", a->infer_out != NULL, infer},
        {"--bench", a->bench, infer},
        {"--weights", a->weights != NULL, infer || export || quantize},
        {"--layers", a->layers != NULL, quantize},
        {"--calibrate", a->calibrate != NULL, quantize},
        {"--json", a->fmt == PMLC_PLAN_JSON, !strcmp(a->cmd, "plan")},
        {"--dot", a->fmt == PMLC_PLAN_DOT, !strcmp(a->cmd, "plan")},
        {"--timeline", a->timeline != NULL, !strcmp(a->cmd, "plan") || train},
    };
    for (size_t k = 0; k < sizeof only / sizeof only[0]; k++)
        if (only[k].given && !only[k].taken) {
            fprintf(stderr, "pmlc: '%s' takes no %s (see pmlc help)\n", a->cmd, only[k].name);
            return usage_error("%s", "an option the command does not use");
        }
    if ((export || quantize) && !a->weights)
        return usage_error("'%s' needs --weights W (a safetensors file or checkpoint folder)", a->cmd);
    if (infer && !a->weights)
        return usage_error("'%s' needs --weights W (a safetensors file or checkpoint folder)", a->cmd);
    if (infer && !a->input) return usage_error("'%s' needs --input X.npy", a->cmd);
    if (infer && !a->infer_out && !a->bench) return usage_error("'%s' needs --output Y.npy (or --bench)", a->cmd);
    return -1;
}

static void print_summary(int errors, int max_errors)
{
    int limit = max_errors ? max_errors : 20;
    if (errors > limit)
        fprintf(stderr, "%d error%s shown, more suppressed (--max-errors %d).\n", limit, limit == 1 ? "" : "s", limit);
    else if (errors == limit)
        fprintf(stderr, "%d error%s generated; stopped at the limit (--max-errors %d).\n", errors,
                errors == 1 ? "" : "s", limit);
    else
        fprintf(stderr, "%d error%s generated.\n", errors, errors == 1 ? "" : "s");
}

/* `plan --timeline PATH`: the timetable's picture, written whole or not at all by the
 * one rule every output follows (pml.h: pml_output_write; a folder is refused). */
static int write_timeline(pmlc_session *s, pml_context *ctx, const char *path)
{
    char *svg = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&svg, &len);
    int failed = 1;
    if (!mem)
        pmlc_cli_fail("out of memory", NULL);
    else if (pmlc_session_plan(s, PMLC_PLAN_TIMELINE, mem))
        fclose(mem); /* the session said why */
    else if (fclose(mem) || pml_output_write(ctx, path, svg, len))
        pmlc_cli_fail("cannot write the timeline", pml_context_error(ctx));
    else
        failed = 0;
    free(svg);
    return failed;
}

/* Checks (and plans) each file in a session of its own; returns the exit status. */
static int run(const args *a)
{
    const char *no_color = getenv("NO_COLOR");
    int use_color =
        !strcmp(a->color, "always") || (!strcmp(a->color, "auto") && isatty(STDERR_FILENO) && !(no_color && *no_color));
    pmlc_options opt = {a->includes, a->n_inc, stderr, use_color, a->max_errors, a->sets, a->n_sets, a->model, 0, 0};
    if (!strcmp(a->cmd, "build")) return pmlc_build_main(a->files[0], &opt, a->output, a->arch);
    if (!strcmp(a->cmd, "quantize"))
        return pmlc_quantize_main(a->files[0], &opt, a->weights, a->layers, a->calibrate, a->output, a->quiet);
    if (!strcmp(a->cmd, "export")) return pmlc_export_main(a->files[0], &opt, a->weights, a->output, a->quiet);
    if (!strcmp(a->cmd, "infer")) {
        pmlc_infer_args t = {.file = a->files[0],
                             .compile = opt,
                             .weights = a->weights,
                             .input = a->input,
                             .output = a->infer_out,
                             .bench = a->bench,
                             .trace = a->trace,
                             .threads = a->threads,
                             .backend = a->backend,
                             .gpus = a->gpus,
                             .n_gpus = a->n_gpus,
                             .devices_local = a->devices_local,
                             .quiet = a->quiet};
        return pmlc_infer_main(&t);
    }
    if (!strcmp(a->cmd, "train") || !strcmp(a->cmd, "run")) { /* run: train, documented as build-and-train */
        if (a->init && a->resume) return usage_error("%s and --resume cannot be used together", "--init");
        pmlc_train_args t = {.file = a->files[0],
                             .compile = opt,
                             .steps = a->steps,
                             .seed = a->seed,
                             .threads = a->threads,
                             .backend = a->backend,
                             .gpus = a->gpus,
                             .n_gpus = a->n_gpus,
                             .devices_local = a->devices_local,
                             .out = a->out,
                             .metrics = a->metrics,
                             .trace = a->trace,
                             .timeline = a->timeline,
                             .eval = a->eval,
                             .init = a->init,
                             .resume = a->resume,
                             .quiet = a->quiet,
                             .rank = a->rank,
                             .world = a->world,
                             .peer_timeout = a->peer_timeout,
                             .replicas = a->replicas,
                             .check_numerics = a->check_numerics,
                             .argc = a->argc,
                             .argv = a->argv};
        if ((t.rank >= 0) != (t.world > 0)) return usage_error("%s and --world go together", "--rank");
        return pmlc_train_main(&t);
    }
    int failed = 0;
    pml_context *ctx = NULL; /* --timeline's output, checked before any planning */
    if (a->timeline && (pml_context_create(&ctx) || pml_output_check(ctx, a->timeline))) {
        pmlc_cli_fail("--timeline", ctx ? pml_context_error(ctx) : "out of memory");
        pml_context_destroy(ctx);
        return 1;
    }
    for (int f = 0; f < a->n_files; f++) {
        pmlc_session *s = pmlc_session_create(&opt);
        if (!s) {
            fputs("pmlc: out of memory\n", stderr);
            return 1;
        }
        if (!pmlc_session_check_file(s, a->files[f]) && !strcmp(a->cmd, "plan") && !pmlc_session_plan(s, a->fmt, stdout) &&
            a->timeline && write_timeline(s, ctx, a->timeline))
            failed = 1;
        int errors = pmlc_session_errors(s);
        if (errors) {
            print_summary(errors, a->max_errors);
            failed = 1;
        }
        pmlc_session_destroy(s);
    }
    pml_context_destroy(ctx);
    return failed;
}

int main(int argc, char **argv)
{
    args a = {0};
    a.color = "auto";
    a.fmt = PMLC_PLAN_TEXT;
    a.steps = a.seed = -1;
    a.rank = -1;
    a.backend = PML_BACKEND_AUTO;
    a.argc = argc;
    a.argv = argv;
    /* An output that is a pipe or fifo whose reader quit is a write error to report
     * (and, for --metrics, to outlive: training goes on), not a silent death. */
    signal(SIGPIPE, SIG_IGN);
    a.files = calloc((size_t)argc + 1, sizeof *a.files);
    a.includes = calloc((size_t)argc + 1, sizeof *a.includes);
    a.sets = calloc((size_t)argc + 1, sizeof *a.sets);
    int status = 1;
    if (!a.files || !a.includes || !a.sets)
        fputs("pmlc: out of memory\n", stderr);
    else if ((status = parse_args(argc, argv, &a)) < 0)
        status = run(&a);
    free(a.files);
    free(a.includes);
    free(a.sets);
    return status;
}
