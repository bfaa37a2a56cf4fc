/*
 * The board's window onto the MC146818 RTC's CMOS NVRAM (hw/pc/rtc_mc146818.c).
 *
 * The RTC fills the memory-size bytes itself from the machine's RAM layout
 * (0x15/0x16 base KiB, 0x17/0x18 and 0x30/0x31 extended KiB, 0x34/0x35 64 KiB
 * units above 16 MiB, 0x5b-0x5d 64 KiB units above 4 GiB, 0x5f CPUs - 1).
 * The board stores the rest (0x10 floppy types, 0x14 equipment, 0x38/0x3d boot
 * order, 0x39 ATA translation, ...) with rtc_cmos_set after creating the
 * device: the state pointer is Device.state of the "mc146818rtc" device
 * (device_create's result, or device_find_by_id).
 */
#ifndef KESTREL_RTC_H
#define KESTREL_RTC_H

#include "kestrel/common.h"

#define RTC_CMOS_SIZE 128

/*
 * Store a CMOS byte.  Index 0x00-0x0d (clock and status registers) and
 * anything outside 0..127 are refused with a log line under -d guest_errors.
 */
void rtc_cmos_set(void *rtc_state, int index, uint8_t value);
/* Raw NVRAM byte (no clock update), 0xff outside 0..127. */
uint8_t rtc_cmos_get(void *rtc_state, int index);

#endif
