/* SPDX-License-Identifier: ISC */
/* nohandle.c - a test fixture: a handler without its handle function. */
#include <sockserverd.h>

SSD_HANDLER(nohandle) = {
	.abi = SSD_ABI_VERSION,
	.name = "nohandle",
	.description = "test fixture: no handle",
};
