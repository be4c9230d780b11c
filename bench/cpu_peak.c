/* The CPU's arithmetic peak, measured: independent chains of AVX-512 fused multiply-adds
 * (fp32) and bf16 dot products on every OpenMP thread, so that the engine's conv throughput
 * can be read as a fraction of what this machine can do at all. bench_engine.py compiles and
 * runs it (gcc -O2 -march=native -fopenmp); it prints "fp32 GFLOPS" and, where the CPU has
 * AVX512-BF16, "bf16 GFLOPS". */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <time.h>

#define CHAINS 12 /* enough independent accumulators to hide the instructions' latency */
#define ROUNDS 20000000L

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static double fp32_gflops(void) {
    double best = 0, sink = 0;
    for (int repeat = 0; repeat < 3; repeat++) {
        double start = seconds();
#pragma omp parallel reduction(+ : sink)
        {
            __m512 acc[CHAINS], a = _mm512_set1_ps(1.0001f), b = _mm512_set1_ps(0.9999f);
            for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_setzero_ps();
            for (long r = 0; r < ROUNDS; r++) {
#pragma GCC unroll 12
                for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_fmadd_ps(a, b, acc[i]);
                __asm__ volatile("" : "+v"(a)); /* keep the loop from being folded away */
            }
            for (int i = 0; i < CHAINS; i++) sink += _mm512_reduce_add_ps(acc[i]);
        }
        double flops = (double)omp_get_max_threads() * ROUNDS * CHAINS * 16 * 2;
        double rate = flops / (seconds() - start) / 1e9;
        if (rate > best) best = rate;
    }
    return sink == 42 ? 0 : best;
}

#ifdef __AVX512BF16__
static double bf16_gflops(void) {
    double best = 0, sink = 0;
    for (int repeat = 0; repeat < 3; repeat++) {
        double start = seconds();
#pragma omp parallel reduction(+ : sink)
        {
            __m512 acc[CHAINS];
            __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3c00);
            for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_setzero_ps();
            for (long r = 0; r < ROUNDS; r++) {
#pragma GCC unroll 12
                for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
                __asm__ volatile("" : "+v"(a));
            }
            for (int i = 0; i < CHAINS; i++) sink += _mm512_reduce_add_ps(acc[i]);
        }
        /* each dot product: 16 lanes x 2 bf16 pairs x (multiply + add) */
        double flops = (double)omp_get_max_threads() * ROUNDS * CHAINS * 16 * 2 * 2;
        double rate = flops / (seconds() - start) / 1e9;
        if (rate > best) best = rate;
    }
    return sink == 42 ? 0 : best;
}
#endif

int main(void) {
    printf("threads %d\n", omp_get_max_threads());
    printf("fp32 GFLOPS %.1f\n", fp32_gflops());
#ifdef __AVX512BF16__
    printf("bf16 GFLOPS %.1f\n", bf16_gflops());
#endif
    return 0;
}
