/* device.h — which CUDA devices this machine has, asked of the dlopened driver.
 *
 * pml_cuda_device_count never fails: no driver, no device, or a driver error all mean
 * 0 devices, with the reason in `why` (for "no GPU: ..." messages and for tests that
 * skip). pml_cuda_device_info describes one device. Thread-safe. */
#ifndef PML_CUDA_DEVICE_H
#define PML_CUDA_DEVICE_H

#include <stddef.h>

#include "core/error.h"

typedef struct pml_cuda_device_info {
    char name[128];
    int cc_major, cc_minor; /* compute capability: 9.0 for H100 */
    int sms;
    int driver_version; /* 13000 for 13.0 */
} pml_cuda_device_info;

int pml_cuda_device_count(char *why, size_t cap);

pml_status pml_cuda_device_info_get(int index, pml_cuda_device_info *info, pml_err *err);

#endif
