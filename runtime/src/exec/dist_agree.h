/* dist_agree.h — whether the ranks of a run were started alike (dist.h): each rank
 * states the facts that decide the run's numbers and files (its options, the plan it
 * built, its library version, what it found in the shared output folder), rank 0
 * compares every rank's facts with its own, and every rank gets the same verdict, which
 * names the first difference: "rank 1 was started with --seed 7, rank 0 with --seed 3".
 *
 * A fact is a key and a value compared byte for byte (or absent); `shown` is how a
 * message writes it ("--seed 7"), and `hint` what a message adds after a difference
 * (why the two must agree, what to do). Keys are looked up, not matched by position, so
 * two ranks may list them in another order; a key one rank lacks is that rank's absent
 * value. Facts are compared in rank 0's order, the ranks in rank order: the first
 * difference is the one named (and how many other ranks differ).
 *
 * Built on pml_dist.move alone (dist_gather.h). Every rank calls it with its own facts,
 * at the same point; all return the same status and message. */
#ifndef PML_TRAIN_DIST_AGREE_H
#define PML_TRAIN_DIST_AGREE_H

#include "exec/dist.h"

/* pml.h's pml_rank_fact (key, value, shown, hint): the program states its facts in the
 * public type, and this module compares them. */
typedef pml_rank_fact pml_dist_fact;

/* PML_OK when every rank's facts equal rank 0's; else PML_ERR_INVALID_ARG on every rank
 * with the message above. */
pml_status pml_dist_agree(pml_dist *d, const pml_dist_fact *facts, int n, pml_err *err);

#endif
