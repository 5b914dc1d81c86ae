/* device.c — see device.h. */
#include "cuda/device.h"

#include <stdio.h>

#include "cuda/driver.h"

int pml_cuda_device_count(char *why, size_t cap)
{
    pml_err e = {0};
    const pml_cuda_driver *d = pml_cuda_driver_get(&e);
    if (!d) {
        if (why && cap) snprintf(why, cap, "%s", e.msg);
        return 0;
    }
    int n = 0;
    pml_cu_result r = d->DeviceGetCount(&n);
    if (r || n <= 0) {
        if (why && cap) snprintf(why, cap, "the CUDA driver reports no device%s", r ? " (cuDeviceGetCount failed)" : "");
        return 0;
    }
    if (why && cap) why[0] = 0;
    return n;
}

pml_status pml_cuda_device_info_get(int index, pml_cuda_device_info *info, pml_err *err)
{
    const pml_cuda_driver *d = pml_cuda_driver_get(err);
    if (!d) return err ? err->code : PML_ERR_DEVICE;
    pml_cu_device dev;
    PML_CHECK_CU(d, DeviceGet(&dev, index), err);
    PML_CHECK_CU(d, DeviceGetName(info->name, (int)sizeof info->name, dev), err);
    PML_CHECK_CU(d, DeviceGetAttribute(&info->cc_major, PML_CU_ATTR_CC_MAJOR, dev), err);
    PML_CHECK_CU(d, DeviceGetAttribute(&info->cc_minor, PML_CU_ATTR_CC_MINOR, dev), err);
    PML_CHECK_CU(d, DeviceGetAttribute(&info->sms, PML_CU_ATTR_SM_COUNT, dev), err);
    PML_CHECK_CU(d, DriverGetVersion(&info->driver_version), err);
    return PML_OK;
}
