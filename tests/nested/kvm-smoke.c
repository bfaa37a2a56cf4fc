/*
 * kvm-smoke: the smallest possible end-to-end check that /dev/kvm works.
 *
 * Runs inside the nested L1 Linux (tests/nested/run-l1), static-linked so the
 * initramfs needs no libraries.  Uses only the documented KVM API
 * (Documentation/virt/kvm/api.rst):
 *   KVM_GET_API_VERSION (must be 12), KVM_CREATE_VM, KVM_SET_USER_MEMORY_REGION,
 *   KVM_CREATE_VCPU, KVM_GET_VCPU_MMAP_SIZE, KVM_GET/SET_SREGS, KVM_SET_REGS,
 *   KVM_RUN, and the kvm_run exit reasons IO, MMIO and HLT.
 *
 * Guest: one 4 KiB page of real-mode code at guest-physical 0x1000
 * (CS base 0, IP 0x1000) that
 *   - writes "KVM\n" to port 0xe9 one byte at a time (KVM_EXIT_IO, out),
 *   - stores 0x4b56 to [0x1800] (RAM: must NOT exit, checked afterwards),
 *   - writes 0xab to 0x8000, which has no memory slot (KVM_EXIT_MMIO),
 *   - reads port 0x61 (KVM_EXIT_IO, in; we supply 0x5a) and echoes it
 *     to port 0xe9,
 *   - halts (KVM_EXIT_HLT).
 * Prints one line per exit and "KVM-SMOKE-OK" when every exit was the one
 * expected, else "KVM-SMOKE-FAIL: why".  Exit status 0 on success.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

static int fail(const char *what)
{
    printf("KVM-SMOKE-FAIL: %s: %s\n", what, strerror(errno));
    fflush(stdout);
    return 1;
}

static int fail_msg(const char *why)
{
    printf("KVM-SMOKE-FAIL: %s\n", why);
    fflush(stdout);
    return 1;
}

/* Hand-assembled 16-bit code, origin 0x1000. */
static const uint8_t guest_code[] = {
    0xb0, 'K',                  /* mov al, 'K'          */
    0xe6, 0xe9,                 /* out 0xe9, al         */
    0xb0, 'V',                  /* mov al, 'V'          */
    0xe6, 0xe9,                 /* out 0xe9, al         */
    0xb0, 'M',                  /* mov al, 'M'          */
    0xe6, 0xe9,                 /* out 0xe9, al         */
    0xb0, '\n',                 /* mov al, '\n'         */
    0xe6, 0xe9,                 /* out 0xe9, al         */
    0xb8, 0x56, 0x4b,           /* mov ax, 0x4b56       */
    0xa3, 0x00, 0x18,           /* mov [0x1800], ax     */
    0xb0, 0xab,                 /* mov al, 0xab         */
    0xa2, 0x00, 0x80,           /* mov [0x8000], al     */
    0xe4, 0x61,                 /* in al, 0x61          */
    0xe6, 0xe9,                 /* out 0xe9, al         */
    0xf4,                       /* hlt                  */
};

static int cap(int kvm, long c)
{
    return ioctl(kvm, KVM_CHECK_EXTENSION, c);
}

int main(void)
{
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) {
        return fail("open /dev/kvm");
    }
    int api = ioctl(kvm, KVM_GET_API_VERSION, 0);
    printf("kvm-smoke: KVM_GET_API_VERSION=%d\n", api);
    if (api != KVM_API_VERSION) {
        return fail_msg("unexpected API version");
    }
    printf("kvm-smoke: caps USER_MEMORY=%d IRQCHIP=%d NR_VCPUS=%d MAX_VCPUS=%d "
           "PIT2=%d IRQ_ROUTING=%d TSC_CONTROL=%d IMMEDIATE_EXIT=%d SPLIT_IRQCHIP=%d "
           "X86_ROBUST_SINGLESTEP=%d\n",
           cap(kvm, KVM_CAP_USER_MEMORY), cap(kvm, KVM_CAP_IRQCHIP),
           cap(kvm, KVM_CAP_NR_VCPUS), cap(kvm, KVM_CAP_MAX_VCPUS),
           cap(kvm, KVM_CAP_PIT2), cap(kvm, KVM_CAP_IRQ_ROUTING),
           cap(kvm, KVM_CAP_TSC_CONTROL), cap(kvm, KVM_CAP_IMMEDIATE_EXIT),
           cap(kvm, KVM_CAP_SPLIT_IRQCHIP), cap(kvm, KVM_CAP_X86_ROBUST_SINGLESTEP));

    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) {
        return fail("KVM_CREATE_VM");
    }
    uint8_t *mem = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        return fail("mmap guest memory");
    }
    memcpy(mem, guest_code, sizeof(guest_code));
    struct kvm_userspace_memory_region region = {
        .slot = 0,
        .guest_phys_addr = 0x1000,
        .memory_size = 0x1000,
        .userspace_addr = (uintptr_t)mem,
    };
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
        return fail("KVM_SET_USER_MEMORY_REGION");
    }
    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0) {
        return fail("KVM_CREATE_VCPU");
    }
    int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size <= 0) {
        return fail("KVM_GET_VCPU_MMAP_SIZE");
    }
    struct kvm_run *run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE,
                               MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED) {
        return fail("mmap kvm_run");
    }

    struct kvm_sregs sregs;
    if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) {
        return fail("KVM_GET_SREGS");
    }
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    sregs.ds.base = 0;
    sregs.ds.selector = 0;
    if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) {
        return fail("KVM_SET_SREGS");
    }
    struct kvm_regs regs;
    memset(&regs, 0, sizeof(regs));
    regs.rip = 0x1000;
    regs.rflags = 0x2;
    if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) {
        return fail("KVM_SET_REGS");
    }

    char text[16];
    int ntext = 0;
    int mmio_ok = 0, in_ok = 0;
    for (int i = 0; i < 64; i++) {
        if (ioctl(vcpu, KVM_RUN, 0) < 0) {
            if (errno == EINTR) {
                continue;
            }
            return fail("KVM_RUN");
        }
        switch (run->exit_reason) {
        case KVM_EXIT_IO: {
            uint8_t *data = (uint8_t *)run + run->io.data_offset;
            printf("kvm-smoke: exit IO %s port=0x%x size=%d count=%u",
                   run->io.direction == KVM_EXIT_IO_OUT ? "out" : "in",
                   run->io.port, run->io.size, run->io.count);
            if (run->io.direction == KVM_EXIT_IO_OUT) {
                printf(" data=0x%02x\n", data[0]);
                if (run->io.port == 0xe9 && ntext < (int)sizeof(text) - 1) {
                    text[ntext++] = (char)data[0];
                }
            } else {
                printf("\n");
                if (run->io.port == 0x61 && run->io.size == 1) {
                    data[0] = 0x5a;
                    in_ok = 1;
                }
            }
            break;
        }
        case KVM_EXIT_MMIO:
            printf("kvm-smoke: exit MMIO %s addr=0x%llx len=%u data=0x%02x\n",
                   run->mmio.is_write ? "write" : "read",
                   (unsigned long long)run->mmio.phys_addr, run->mmio.len,
                   run->mmio.data[0]);
            if (run->mmio.is_write && run->mmio.phys_addr == 0x8000 &&
                run->mmio.len == 1 && run->mmio.data[0] == 0xab) {
                mmio_ok = 1;
            }
            break;
        case KVM_EXIT_HLT: {
            text[ntext] = 0;
            uint16_t stored = (uint16_t)(mem[0x800] | (mem[0x801] << 8));
            if (ioctl(vcpu, KVM_GET_REGS, &regs) < 0) {
                return fail("KVM_GET_REGS");
            }
            printf("kvm-smoke: exit HLT rip=0x%llx ram[0x1800]=0x%04x\n",
                   (unsigned long long)regs.rip, stored);
            if (strcmp(text, "KVM\n" "\x5a") != 0) {
                return fail_msg("port 0xe9 did not see \"KVM\\n\" then 0x5a");
            }
            if (stored != 0x4b56) {
                return fail_msg("guest store to RAM not visible to the host");
            }
            if (!mmio_ok) {
                return fail_msg("no MMIO write exit for 0x8000");
            }
            if (!in_ok) {
                return fail_msg("no IO-in exit for port 0x61");
            }
            if (regs.rip != 0x1000 + sizeof(guest_code)) {
                return fail_msg("rip after hlt is not just past the hlt");
            }
            printf("KVM-SMOKE-OK\n");
            fflush(stdout);
            return 0;
        }
        case KVM_EXIT_FAIL_ENTRY:
            printf("KVM-SMOKE-FAIL: KVM_EXIT_FAIL_ENTRY reason=0x%llx\n",
                   (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
            return 1;
        case KVM_EXIT_INTERNAL_ERROR:
            printf("KVM-SMOKE-FAIL: KVM_EXIT_INTERNAL_ERROR suberror=%u\n",
                   run->internal.suberror);
            return 1;
        default:
            printf("KVM-SMOKE-FAIL: unexpected exit reason %u\n", run->exit_reason);
            return 1;
        }
        fflush(stdout);
    }
    return fail_msg("guest did not halt within 64 exits");
}
