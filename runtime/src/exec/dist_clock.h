/* dist_clock.h — how far each rank's CLOCK_MONOTONIC is from rank 0's (dist.h), so that
 * spans recorded on different nodes can share one timeline. Ranks on one node share
 * the clock (their offsets come out within their uncertainty of zero); on other nodes
 * the clocks' zeros are unrelated (each counts from its boot).
 *
 * How: rank 0 and each other rank exchange a few ping-pongs over pml_dist.move: rank 0
 * notes when it sent (a) and when the answer came back (b), rank r what its clock said
 * in between (c). Rank r's clock read c at some instant in [a, b] of rank 0's, so its
 * offset is c − (a + b)/2 within ±(b − a)/2; the sample with the shortest round trip
 * gives the tightest bound. Drift between the clocks after the exchange is not
 * modelled (a few parts per million on NTP-disciplined hosts).
 *
 * Every rank calls pml_dist_clock_offsets, between steps. */
#ifndef PML_TRAIN_DIST_CLOCK_H
#define PML_TRAIN_DIST_CLOCK_H

#include "exec/dist.h"

/* One ping-pong in seconds: rank 0's clock when it sent and when the answer arrived,
 * and the peer's clock when it answered. */
typedef struct pml_clock_sample {
    double sent, peer, back;
} pml_clock_sample;

/* The estimate from n >= 1 samples: the peer's clock minus rank 0's, and its bound. */
void pml_clock_best(const pml_clock_sample *s, int n, double *offset, double *uncertainty);

/* `rounds` (1 to 16) ping-pongs with each rank; on rank 0, offset[r] and
 * uncertainty[r] (world entries, seconds; rank 0's are 0) for every rank; on the
 * others both are zeroed. */
pml_status pml_dist_clock_offsets(pml_dist *d, int rounds, double *offset, double *uncertainty, pml_err *err);

#endif
