/* nvrtc.c — see nvrtc.h. The few NVRTC entry points used are declared here by their
 * documented C signatures (nvrtcResult is an int enum, nvrtcProgram a pointer), so
 * the compiler builds without the CUDA headers. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, strtok_r, O_CLOEXEC, fsync */
#include "gpu/nvrtc.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void *nv_prog;
typedef int nv_res; /* NVRTC_SUCCESS = 0 */

struct pmlc_nvrtc {
    void *lib;
    char version[32];
    nv_res (*Version)(int *, int *);
    const char *(*GetErrorString)(nv_res);
    nv_res (*CreateProgram)(nv_prog *, const char *, const char *, int, const char *const *, const char *const *);
    nv_res (*DestroyProgram)(nv_prog *);
    nv_res (*CompileProgram)(nv_prog, int, const char *const *);
    nv_res (*GetProgramLogSize)(nv_prog, size_t *);
    nv_res (*GetProgramLog)(nv_prog, char *);
    nv_res (*GetCUBINSize)(nv_prog, size_t *);
    nv_res (*GetCUBIN)(nv_prog, char *);
    nv_res (*GetPTXSize)(nv_prog, size_t *);
    nv_res (*GetPTX)(nv_prog, char *);
};

pmlc_nvrtc *pmlc_nvrtc_open(char *msg, size_t cap)
{
    const char *env = getenv("PML_NVRTC");
    const char *names[] = {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"};
    void *lib = NULL;
    if (env && *env) { /* only what the user named */
        if (!(lib = dlopen(env, RTLD_NOW | RTLD_LOCAL))) {
            snprintf(msg, cap, "NVRTC (the CUDA C compiler library) could not be loaded from PML_NVRTC=%s: %s", env,
                     dlerror());
            return NULL;
        }
    }
    for (int i = 0; i < 3 && !lib; i++) lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(msg, cap,
                 "NVRTC (the CUDA C compiler library) was not found: tried libnvrtc.so.13, libnvrtc.so.12 and "
                 "libnvrtc.so; install the CUDA toolkit or set PML_NVRTC to the library's path");
        return NULL;
    }
    pmlc_nvrtc *nv = calloc(1, sizeof *nv);
    if (!nv) {
        dlclose(lib);
        snprintf(msg, cap, "out of memory");
        return NULL;
    }
    nv->lib = lib;
    struct {
        void **slot;
        const char *name;
    } fns[] = {
        {(void **)&nv->Version, "nvrtcVersion"},
        {(void **)&nv->GetErrorString, "nvrtcGetErrorString"},
        {(void **)&nv->CreateProgram, "nvrtcCreateProgram"},
        {(void **)&nv->DestroyProgram, "nvrtcDestroyProgram"},
        {(void **)&nv->CompileProgram, "nvrtcCompileProgram"},
        {(void **)&nv->GetProgramLogSize, "nvrtcGetProgramLogSize"},
        {(void **)&nv->GetProgramLog, "nvrtcGetProgramLog"},
        {(void **)&nv->GetCUBINSize, "nvrtcGetCUBINSize"},
        {(void **)&nv->GetCUBIN, "nvrtcGetCUBIN"},
        {(void **)&nv->GetPTXSize, "nvrtcGetPTXSize"},
        {(void **)&nv->GetPTX, "nvrtcGetPTX"},
    };
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        *fns[i].slot = dlsym(lib, fns[i].name);
        if (!*fns[i].slot) {
            snprintf(msg, cap, "NVRTC library lacks %s (too old?)", fns[i].name);
            dlclose(lib);
            free(nv);
            return NULL;
        }
    }
    int major = 0, minor = 0;
    nv->Version(&major, &minor);
    snprintf(nv->version, sizeof nv->version, "%d.%d", major, minor);
    return nv;
}

/* The library stays mapped: unloading it would unload the C++ runtime it brought in
 * and orphan that runtime's own allocations (a leak report under LeakSanitizer), and
 * the next open would pay for loading it again. */
void pmlc_nvrtc_close(pmlc_nvrtc *nv) { free(nv); }

const char *pmlc_nvrtc_version(const pmlc_nvrtc *nv) { return nv->version; }

/* No fast math: the kernels must agree with the CPU backend to within rounding. */
const char *pmlc_nvrtc_options(const char *arch, char *buf, size_t cap)
{
    snprintf(buf, cap, "--gpu-architecture=%s\n--std=c++17\n--fmad=true\n--extra-device-vectorization\n", arch);
    return buf;
}

static char *dup_msg(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 1;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s%s", a, b);
    return s;
}

int pmlc_nvrtc_compile(pmlc_nvrtc *nv, const char *src, const char *name, const char *arch, unsigned char **bin,
                       size_t *size, char **log)
{
    *bin = NULL, *size = 0, *log = NULL;
    char opts[256];
    pmlc_nvrtc_options(arch, opts, sizeof opts);
    const char *argv[8];
    int argc = 0;
    for (char *p = opts; *p && argc < 8;) { /* the option lines as arguments */
        argv[argc++] = p;
        char *nl = strchr(p, '\n');
        *nl = 0;
        p = nl + 1;
    }
    nv_prog prog = NULL;
    nv_res r = nv->CreateProgram(&prog, src, name, 0, NULL, NULL);
    if (r) {
        *log = dup_msg("nvrtcCreateProgram: ", nv->GetErrorString(r));
        return 1;
    }
    r = nv->CompileProgram(prog, argc, argv);
    size_t n = 0;
    if (r) {
        if (!nv->GetProgramLogSize(prog, &n) && n > 1 && (*log = malloc(n + 1)) && !nv->GetProgramLog(prog, *log))
            (*log)[n] = 0;
        else {
            free(*log);
            *log = dup_msg("nvrtcCompileProgram: ", nv->GetErrorString(r));
        }
        nv->DestroyProgram(&prog);
        return 1;
    }
    int ptx = !strncmp(arch, "compute_", 8);
    r = ptx ? nv->GetPTXSize(prog, &n) : nv->GetCUBINSize(prog, &n);
    if (!r && !(*bin = malloc(n ? n : 1))) r = -1;
    if (!r) r = ptx ? nv->GetPTX(prog, (char *)*bin) : nv->GetCUBIN(prog, (char *)*bin);
    nv->DestroyProgram(&prog);
    if (r) {
        free(*bin);
        *bin = NULL;
        *log = dup_msg(ptx ? "nvrtcGetPTX: " : "nvrtcGetCUBIN: ", r < 0 ? "out of memory" : nv->GetErrorString(r));
        return 1;
    }
    *size = n;
    return 0;
}
