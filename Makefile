# tern - one flat Makefile (kvmtool style).
#
#   make            build/tern, the test guest (ELF + bzImage)
#   make check      every test, plain and under ASan+UBSan; ends "N passed, N failed"
#   make demo       the demo (README)
#   make bench      tests/bench/*
#   V=1             show commands;  WERROR=0  warnings are not errors
#
# Set-up (apt-get of every dependency) is scripts/setup.sh, which demo and
# check run first; it is idempotent and fast when nothing is missing.

CC      ?= gcc
BUILD   ?= build
WERROR  ?= 1
V       ?= 0

ifeq ($(V),1)
Q :=
else
Q := @
endif

WARNINGS := -Wall -Wextra -Wformat=2 -Wmissing-prototypes -Wstrict-prototypes \
	-Wundef -Wwrite-strings -Wshadow -Wpointer-arith -Wvla -Wimplicit-fallthrough \
	-Wold-style-definition -Wmissing-declarations -Wnull-dereference
ifeq ($(WERROR),1)
WARNINGS += -Werror
endif

CFLAGS_COMMON := -std=gnu11 -g -O2 $(WARNINGS) -I. -I$(BUILD)/gen -D_GNU_SOURCE -DTERN_HOST -MD -MP
HOST_CFLAGS   := $(CFLAGS_COMMON) -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE
HOST_LDFLAGS  := -pie -Wl,-z,relro,-z,now
HOST_LIBS     := -lpthread -luring -lfdt -ljson-c -lisal -lseccomp -lcap-ng
ASAN_FLAGS    := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

# ---- tern -------------------------------------------------------------------

# The library part of tern: everything but main.c, so tests link it too.
LIB_SRCS += vmm/util.c
LIB_SRCS += vmm/test_faults.c
LIB_SRCS += vmm/dynlib.c
LIB_SRCS += vmm/sandbox.c
LIB_SRCS += vmm/privdrop.c
LIB_SRCS += vmm/landlock.c
LIB_SRCS += vmm/memory.c
LIB_SRCS += vmm/bus.c
LIB_SRCS += vmm/cpuid.c
LIB_SRCS += vmm/vcpu.c
LIB_SRCS += vmm/throttle.c
LIB_SRCS += vmm/vm.c
LIB_SRCS += cmd/console.c
LIB_SRCS += vmm/event.c
LIB_SRCS += vmm/boot.c
LIB_SRCS += vmm/boot_bzimage.c
LIB_SRCS += vmm/boot_elf.c
LIB_SRCS += vmm/boot_x86.c
LIB_SRCS += vmm/mptable.c
LIB_SRCS += vmm/acpi.c
LIB_SRCS += devices/device.c
LIB_SRCS += devices/state.c
LIB_SRCS += devices/serial.c
LIB_SRCS += devices/serial_out.c
LIB_SRCS += devices/i8042.c
LIB_SRCS += devices/cmos.c
LIB_SRCS += devices/acpi_pm.c
LIB_SRCS += devices/testdev.c
LIB_SRCS += devices/pci.c
LIB_SRCS += devices/virtio_pci.c
LIB_SRCS += devices/virtio_net.c
LIB_SRCS += devices/virtio_net_migrate.c
LIB_SRCS += devices/net_config.c
LIB_SRCS += devices/disk_config.c
LIB_SRCS += devices/blk_image.c
LIB_SRCS += devices/blk_copy.c
LIB_SRCS += devices/blk_request.c
LIB_SRCS += devices/blk_io.c
LIB_SRCS += devices/virtio_blk.c
LIB_SRCS += devices/net_announce.c
LIB_SRCS += vmm/irq.c
LIB_SRCS += vdpa/iotlb.c
LIB_SRCS += vdpa/iova.c
LIB_SRCS += vdpa/svq.c
LIB_SRCS += vdpa/relay.c
LIB_SRCS += vdpa/shadow.c
LIB_SRCS += vdpa/shadow_freeze.c
LIB_SRCS += vdpa/shadow_setup.c
LIB_SRCS += vdpa/fault_vdpa.c
LIB_SRCS += vdpa/vhost_vdpa.c
LIB_SRCS += vdpa/vring.c
LIB_SRCS += vdpa/cvq.c
LIB_SRCS += vdpa/cvq_shadow.c
LIB_SRCS += vdpa/wire.c
LIB_SRCS += vdpa/sim_net.c
LIB_SRCS += vdpa/sim_net_ctl.c
LIB_SRCS += vdpa/vduse.c
LIB_SRCS += vdpa/vduse_iotlb.c
LIB_SRCS += cmd/api.c
LIB_SRCS += cmd/api_http.c
LIB_SRCS += cmd/api_vm.c
LIB_SRCS += migrate/kvmstate.c
LIB_SRCS += migrate/snapshot.c
LIB_SRCS += migrate/snapshot_write.c
LIB_SRCS += vmm/dirty.c
LIB_SRCS += migrate/snapmem.c
LIB_SRCS += migrate/stream.c
LIB_SRCS += migrate/tls.c
LIB_SRCS += migrate/listener.c
LIB_SRCS += migrate/stripes.c
LIB_SRCS += migrate/record.c
LIB_SRCS += migrate/transport.c
LIB_SRCS += migrate/migrate_src.c
LIB_SRCS += migrate/migrate_dst.c
LIB_SRCS += migrate/machine.c
MAIN_SRCS := cmd/main.c cmd/cli.c cmd/confine.c cmd/client.c cmd/client_migrate.c

LIB_OBJS       := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
MAIN_OBJS      := $(MAIN_SRCS:%.c=$(BUILD)/obj/%.o)
ASAN_LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/asan/obj/%.o)
ASAN_MAIN_OBJS := $(MAIN_SRCS:%.c=$(BUILD)/asan/obj/%.o)

TERN      := $(BUILD)/tern
ASAN_TERN := $(BUILD)/asan/tern

# ---- test guest ---------------------------------------------------------------

FW_CFLAGS := -std=gnu11 -O2 -g $(WARNINGS) -Ifirmware -ffreestanding -fno-pic -fno-pie \
	-fno-stack-protector -fno-asynchronous-unwind-tables -fno-builtin -nostdlib \
	-mno-red-zone -mgeneral-regs-only -mcmodel=small --param=min-pagesize=0 -MD -MP
FW_LDFLAGS := -nostdlib -static -no-pie -Wl,--build-id=none -Wl,-T,firmware/guest.ld \
	-Wl,-z,max-page-size=4096 -Wl,-z,noexecstack -Wl,--no-warn-rwx-segments
FW_SRCS := firmware/entry.S firmware/cpu.c firmware/lib.c firmware/bootinfo.c firmware/smp.c \
	firmware/main.c firmware/pci.c firmware/virtio_net.c firmware/net_tests.c \
	firmware/net_filter.c firmware/stamp.c \
	firmware/net_echo.c firmware/io_seq.c firmware/virtio_blk.c firmware/blk_tests.c
FW_OBJS := $(patsubst %,$(BUILD)/fwobj/%.o,$(basename $(FW_SRCS)))
FW_ELF  := $(BUILD)/firmware/testguest.elf
FW_BZ   := $(BUILD)/firmware/testguest.bzImage
MKBZ    := $(BUILD)/tools/mkbzimage

# ---- unit tests (cmocka) -----------------------------------------------------

UNIT_TESTS += util_test
UNIT_TESTS += memory_test
UNIT_TESTS += boot_test
UNIT_TESTS += devices_test
UNIT_TESTS += mptable_test
UNIT_TESTS += vring_test
UNIT_TESTS += sim_net_test
UNIT_TESTS += cvq_test
UNIT_TESTS += acpi_test
UNIT_TESTS += api_test
UNIT_TESTS += announce_test
UNIT_TESTS += stream_test
UNIT_TESTS += stripes_test
UNIT_TESTS += iova_test
UNIT_TESTS += svq_test
UNIT_TESTS += shadow_test
UNIT_TESTS += vduse_test
UNIT_TESTS += vhost_vdpa_test
UNIT_TESTS += cvq_shadow_test
UNIT_TESTS += blk_test
UNIT_TESTS += blk_copy_test
UNIT_TESTS += tls_test
UNIT_TESTS += state_test
UNIT_TESTS += sandbox_test
UNIT_BINS      := $(UNIT_TESTS:%=$(BUILD)/tests/unit/%)
ASAN_UNIT_BINS := $(UNIT_TESTS:%=$(BUILD)/asan/tests/unit/%)

# C tests that need /dev/kvm (run by the kvm suite with the test guest).
KVM_TESTS += two_vms_test
KVM_TESTS += snapshot_test
KVM_TESTS += dirty_test
KVM_TESTS += migrate_test
KVM_BINS      := $(KVM_TESTS:%=$(BUILD)/tests/kvm/%)
ASAN_KVM_BINS := $(KVM_TESTS:%=$(BUILD)/asan/tests/kvm/%)

# ---- fuzz targets (clang + libFuzzer; reliability targets A2, A3, A5, A6) ----

FUZZ_TARGETS := snapshot_fuzz vring_fuzz cvq_fuzz api_fuzz migstream_fuzz blk_fuzz
FUZZ_CC      := clang
FUZZ_FLAGS   := -std=gnu11 -g -O1 $(filter-out -Werror,$(WARNINGS)) -I. -I$(BUILD)/gen -D_GNU_SOURCE -DTERN_HOST \
	-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -MD -MP
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/fuzz/obj/%.o)
FUZZ_BINS     := $(FUZZ_TARGETS:%=$(BUILD)/fuzz/%)

$(BUILD)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  FUZZ-CC $<")
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  FUZZ-LD $@")
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer $< $(FUZZ_LIB_OBJS) -o $@ $(HOST_LIBS)

.PHONY: all check check-unit check-kvm check-fuzz check-linux demo bench setup clean
all: $(TERN) $(FW_ELF) $(FW_BZ)

# x86-64 system call names by number, for the seccomp violation message
SYSCALL_NAMES := $(BUILD)/gen/syscall_names.h
$(SYSCALL_NAMES):
	@mkdir -p $(dir $@)
	$(Q)echo '#include <sys/syscall.h>' | $(CC) -dM -E - | \
		sed -n 's/^#define __NR_\([a-z0-9_]*\) \([0-9]*\)$$/[\2] = "\1",/p' > $@
$(BUILD)/obj/vmm/sandbox.o $(BUILD)/asan/obj/vmm/sandbox.o $(BUILD)/fuzz/obj/vmm/sandbox.o: $(SYSCALL_NAMES)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  CC      $<")
	$(Q)$(CC) $(HOST_CFLAGS) -c $< -o $@

$(BUILD)/asan/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  CC-ASAN $<")
	$(Q)$(CC) $(HOST_CFLAGS) $(ASAN_FLAGS) -c $< -o $@

$(TERN): $(MAIN_OBJS) $(LIB_OBJS)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) $(HOST_LDFLAGS) $^ -o $@ $(HOST_LIBS)

$(ASAN_TERN): $(ASAN_MAIN_OBJS) $(ASAN_LIB_OBJS)
	$(if $(Q),@echo "  LD-ASAN $@")
	$(Q)$(CC) $(HOST_LDFLAGS) $(ASAN_FLAGS) $^ -o $@ $(HOST_LIBS)

$(BUILD)/fwobj/%.o: %.c
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  FW-CC   $<")
	$(Q)$(CC) $(FW_CFLAGS) -c $< -o $@

$(BUILD)/fwobj/%.o: %.S
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  FW-AS   $<")
	$(Q)$(CC) $(FW_CFLAGS) -D__ASSEMBLY__ -c $< -o $@

$(FW_ELF): $(FW_OBJS) firmware/guest.ld
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  FW-LD   $@")
	$(Q)$(CC) $(FW_CFLAGS) $(FW_LDFLAGS) $(FW_OBJS) -o $@

$(MKBZ): tools/mkbzimage.c
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  HOSTCC  $<")
	$(Q)$(CC) $(CFLAGS_COMMON) $< -o $@

$(FW_BZ): $(FW_ELF) $(MKBZ)
	$(if $(Q),@echo "  BZIMAGE $@")
	$(Q)$(MKBZ) $< $@

# Unit tests (tests/unit/), C KVM tests (tests/kvm/) and C benchmarks link
# tern's library and the tests' own (tests/lib/).
TEST_LIB_SRCS := tests/lib/netdrv.c
TEST_LIB_OBJS := $(TEST_LIB_SRCS:%.c=$(BUILD)/obj/%.o)
ASAN_TEST_LIB_OBJS := $(TEST_LIB_SRCS:%.c=$(BUILD)/asan/obj/%.o)

$(BUILD)/tests/%: tests/%.c $(LIB_OBJS) $(TEST_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  TEST    $@")
	$(Q)$(CC) $(HOST_CFLAGS) $(HOST_LDFLAGS) $< $(TEST_LIB_OBJS) $(LIB_OBJS) -o $@ $(HOST_LIBS) -lcmocka

$(BUILD)/asan/tests/%: tests/%.c $(ASAN_LIB_OBJS) $(ASAN_TEST_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  TEST-AS $@")
	$(Q)$(CC) $(HOST_CFLAGS) $(ASAN_FLAGS) $(HOST_LDFLAGS) $< $(ASAN_TEST_LIB_OBJS) $(ASAN_LIB_OBJS) -o $@ \
		$(HOST_LIBS) -lcmocka

setup:
	$(Q)scripts/setup.sh

# Everything `make check` runs, built in one go.
TEST_DEPS := all $(ASAN_TERN) $(UNIT_BINS) $(ASAN_UNIT_BINS) $(KVM_BINS) $(ASAN_KVM_BINS) $(FUZZ_BINS)

check: setup
	$(Q)$(MAKE) --no-print-directory $(TEST_DEPS)
	$(Q)python3 tests/run.py --build $(BUILD) all

check-unit: $(UNIT_BINS) $(ASAN_UNIT_BINS)
	$(Q)python3 tests/run.py --build $(BUILD) unit

check-fuzz: $(FUZZ_BINS)
	$(Q)python3 tests/run.py --build $(BUILD) fuzz

check-kvm: all $(ASAN_TERN) $(KVM_BINS) $(ASAN_KVM_BINS)
	$(Q)python3 tests/run.py --build $(BUILD) kvm

# The nested Linux lane (docs/linux-lane.md): Debian's kernel under tern
# inside a QEMU TCG guest; the kernel is fetched into $(BUILD)/linux-lane/.
check-linux: setup
	$(Q)$(MAKE) --no-print-directory all
	$(Q)python3 tests/run.py --build $(BUILD) linux

demo: setup
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/demo.sh $(BUILD)

BENCH_BINS := $(BUILD)/tests/bench/switch_bench $(BUILD)/tests/bench/replay_bench $(BUILD)/tests/bench/seccomp_bench

bench: all $(BENCH_BINS)
	$(Q)python3 tests/bench/boot --build $(BUILD)
	$(Q)python3 tests/bench/net --build $(BUILD)
	$(Q)python3 tests/bench/snapshot --build $(BUILD)
	$(Q)python3 tests/bench/migrate --build $(BUILD)
	$(Q)python3 tests/bench/switch --build $(BUILD)
	$(Q)python3 tests/bench/blk --build $(BUILD)
	$(Q)python3 tests/bench/replay --build $(BUILD)
	$(Q)python3 tests/bench/seccomp --build $(BUILD)

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
