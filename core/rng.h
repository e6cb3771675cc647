/* splitmix64 (Steele, Lea and Flood): the one seeded generator smelt uses everywhere a stream of
 * random bits must be the same for the same seed (synthetic weights, sampling, data shuffling,
 * workload arrivals). Advances *state and returns the next 64 bits. */
#ifndef SMELT_RNG_H
#define SMELT_RNG_H

#include <stdint.h>

static inline uint64_t smelt_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

#endif
