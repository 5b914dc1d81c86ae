/* dump_attention_src.c — writes the fused attention kernels' CUDA C templates
 * (pmlc_cuda_attention_src, the text NVRTC compiles) to a file, at build time, so that
 * attention_emulated.cpp compiles that very text for the CPU. Usage: dump_attention_src OUT */
#include <stdio.h>
#include <string.h>

#include "gpu/cuda_attention.h"

int main(int argc, char **argv)
{
    if (argc != 2) return fprintf(stderr, "usage: dump_attention_src OUT\n"), 2;
    FILE *f = fopen(argv[1], "w");
    if (!f) return perror(argv[1]), 1;
    size_t n = strlen(pmlc_cuda_attention_src);
    int bad = fwrite(pmlc_cuda_attention_src, 1, n, f) != n;
    bad |= fclose(f) != 0;
    if (bad) return perror(argv[1]), 1;
    return 0;
}
