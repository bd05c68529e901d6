/* SPDX-License-Identifier: ISC */
/* nosym.c - a test fixture: a shared object without sockserverd_handler. */
#include <sockserverd.h>

SSD_EXPORT int nosym_not_a_handler;
int nosym_not_a_handler = 1;
