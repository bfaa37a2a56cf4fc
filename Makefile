# Kestrel: non-recursive GNU Makefile.  Sources are found by directory, so a
# new device or test is one new file and no edit here.

ifeq ($(wildcard config.mak),)
$(error run ./configure first)
endif
include config.mak

BUILD := build
DESTDIR ?=
prefix ?= $(PREFIX)
bindir ?= $(prefix)/bin

ALL_CFLAGS = $(CFLAGS) -I. -Iinclude $(GLIB_CFLAGS) $(URING_CFLAGS) $(CAPSTONE_CFLAGS) -MMD -MP

# Everything in the emulator except the entry point, shared by the binary and unit tests.
CORE_SRCS := $(sort $(wildcard system/*.c accel/*/*.c hw/*/*.c chardev/*.c block/*.c \
                               net/*.c ui/*.c monitor/*.c))
CORE_SRCS := $(filter-out system/main.c,$(CORE_SRCS))
CORE_OBJS := $(CORE_SRCS:%.c=$(BUILD)/%.o)
LIBS := $(GLIB_LIBS) $(ZLIB_LIBS) $(URING_LIBS) $(CAPSTONE_LIBS) -lutil -lm

TESTLIB_OBJS := $(BUILD)/tests/testlib.o
QTESTLIB_OBJS := $(BUILD)/tests/libqtest.o $(TESTLIB_OBJS)
UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(wildcard tests/unit/test-*.c))
QTEST_TESTS := $(patsubst tests/qtest/%.c,$(BUILD)/tests/qtest/%,$(wildcard tests/qtest/test-*.c))
TEST_PROGS := $(UNIT_TESTS) $(QTEST_TESTS)

# Keep test objects between builds (they are intermediates of pattern rules).
.SECONDARY:

.PHONY: all check check-slow clean distclean install guests bench
all: kestrel kestrel-img

kestrel: $(BUILD)/system/main.o $(CORE_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# The disk image tool (qemu-img's commands) on the block layer.
kestrel-img: $(BUILD)/tools/kestrel-img.o $(CORE_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/%.o: %.c config.mak
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# Unit tests link the whole core (constructors register every device and accel).
$(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(CORE_OBJS) $(TESTLIB_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/qtest/%: $(BUILD)/tests/qtest/%.o $(QTESTLIB_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# bench/uexec: a static x86-64 program on the software CPU alone (bench/cpu-user, tests/cli/uexec.sh).
UEXEC := $(BUILD)/bench/uexec
$(UEXEC): $(BUILD)/bench/uexec.o $(CORE_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

tests: $(TEST_PROGS)

# Test guests (Debian kernel, busybox initramfs, multiboot test kernel) are
# built by tests/guests/build-all into $(BUILD)/guests; the boot tests skip
# with a reason where a guest cannot be built.
guests:
	tests/guests/build-all $(BUILD)/guests

# Guests first: unit tests that load the real Debian kernel need them too.
check: kestrel kestrel-img $(TEST_PROGS) $(UEXEC) guests
	@KESTREL=$(CURDIR)/kestrel BUILD=$(CURDIR)/$(BUILD) tests/run-tests.sh \
	    $(TEST_PROGS) $(sort $(wildcard tests/cli/*.sh tests/boot/*.sh))

check-slow: kestrel kestrel-img $(TEST_PROGS) $(UEXEC) guests
	@KESTREL=$(CURDIR)/kestrel BUILD=$(CURDIR)/$(BUILD) KESTREL_SLOW=1 tests/run-tests.sh \
	    $(TEST_PROGS) $(sort $(wildcard tests/cli/*.sh tests/boot/*.sh tests/slow/*.sh))

bench: kestrel $(UEXEC)
	bench/boot-time
	bench/cpu
	bench/cpu-user
	bench/footprint
	bench/boot-time-nested
	bench/disk

install: kestrel kestrel-img
	install -d $(DESTDIR)$(bindir)
	install -m 755 kestrel $(DESTDIR)$(bindir)/kestrel
	install -m 755 kestrel-img $(DESTDIR)$(bindir)/kestrel-img

clean:
	rm -rf $(BUILD)/system $(BUILD)/accel $(BUILD)/hw $(BUILD)/chardev $(BUILD)/tests \
	       $(BUILD)/block $(BUILD)/net $(BUILD)/ui $(BUILD)/monitor $(BUILD)/tools \
	       kestrel kestrel-img

distclean: clean
	rm -rf $(BUILD) config.mak config.h

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# ACPI DSDT: hw/pc/dsdt.asl compiled by iasl (configure's IASL) into AML and
# embedded in acpi_build.o as the C array dsdt_aml[] ($(BUILD)/hw/pc/dsdt_aml.h).
$(BUILD)/hw/pc/dsdt.aml: hw/pc/dsdt.asl config.mak
	@mkdir -p $(dir $@)
	@test -n "$(IASL)" || { echo "iasl not found: install acpica-tools and rerun ./configure" >&2; exit 1; }
	$(IASL) -vs -vr -p $(basename $@) $< >/dev/null

$(BUILD)/hw/pc/dsdt_aml.h: $(BUILD)/hw/pc/dsdt.aml
	{ echo '/* Generated from hw/pc/dsdt.asl by iasl; do not edit. */'; \
	  echo 'static const unsigned char dsdt_aml[] = {'; \
	  od -An -v -tx1 $< | sed 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g; s/^/    /'; \
	  echo '};'; } > $@.tmp && mv $@.tmp $@

$(BUILD)/hw/pc/acpi_build.o: $(BUILD)/hw/pc/dsdt_aml.h

# Option ROM for -kernel with -bios (hw/pc/linuxboot_fw.c): roms/linuxboot.S
# assembled as 16-bit code, linked at 0, made a flat image, then length and
# checksums set by roms/romsum (a host tool), which also writes the C array
# $(BUILD)/roms/linuxboot_rom.h that linuxboot_fw.o includes.
$(BUILD)/roms/romsum: roms/romsum.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -Wall -Wextra -o $@ $<

$(BUILD)/roms/linuxboot.bin: roms/linuxboot.S $(BUILD)/roms/romsum
	@mkdir -p $(dir $@)
	as --32 -o $(BUILD)/roms/linuxboot.o $<
	ld -m elf_i386 -nostdlib -Ttext 0 -e _start -o $(BUILD)/roms/linuxboot.elf $(BUILD)/roms/linuxboot.o
	objcopy -O binary -j .text $(BUILD)/roms/linuxboot.elf $(BUILD)/roms/linuxboot.raw
	$(BUILD)/roms/romsum $(BUILD)/roms/linuxboot.raw $@

$(BUILD)/roms/linuxboot_rom.h: $(BUILD)/roms/linuxboot.bin $(BUILD)/roms/romsum
	$(BUILD)/roms/romsum -c linuxboot_rom $< $@

$(BUILD)/hw/pc/linuxboot_fw.o: $(BUILD)/roms/linuxboot_rom.h

.PHONY: roms clean-roms
roms: $(BUILD)/roms/linuxboot.bin
clean: clean-roms
clean-roms:
	rm -rf $(BUILD)/roms
