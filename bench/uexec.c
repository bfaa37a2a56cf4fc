/*
 * uexec: run a static x86-64 Linux program on Kestrel's software CPU, with
 * no machine and no guest kernel: the program's pages are identity-mapped
 * user pages of one RAM block, and its system calls land on a HLT at the
 * SYSCALL entry, where this file answers the few that static programs such
 * as busybox's gzip and sh need (file reads, writes to stdout/stderr,
 * anonymous memory, the identity calls).
 *
 * What it is for: measuring the interpreter alone (bench/cpu-user compares
 * it with qemu-x86_64, QEMU's user-mode TCG, on the same binary; under
 * callgrind the host instruction count is exact), and checking it (the
 * output of a real program must equal the host's, tests/cli/uexec.sh).
 *
 * Usage: uexec [-v] [-d ITEMS] [-D FILE] PROGRAM [ARG...]
 *   argv[0] of the guest is PROGRAM; -v prints instruction count and speed
 *   on stderr at the end; -d/-D log as kestrel's do (e.g. -d in_asm).
 * Exit status: the program's, or 125 with one line on stderr when it
 * cannot run (bad ELF, a CPU exception, an unsupported system call it
 * cannot do without).
 *
 * Every address the guest passes in is checked against the RAM block: a
 * bad pointer gets -EFAULT, never a host access outside it.  Files are
 * opened read-only; nothing on the host is written except fds 1 and 2.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "accel/tcg/tcg-internal.h"
#include "accel/tcg/tb.h"
#include "kestrel/log.h"
#include "kestrel/memory.h"

/* Guest physical = linear layout (all below RAM_SIZE, 2 MiB pages). */
#define RAM_SIZE      (256ull << 20)
#define GDT_ADDR      0x1000u
#define PML4_ADDR     0x2000u
#define PDPT_ADDR     0x3000u
#define PD_ADDR       0x4000u
#define SYSCALL_ENTRY 0x5000u        /* one HLT, run at CPL 0 */
#define ARG_AREA      0x6000u        /* argv strings and AT_RANDOM bytes */
#define ARG_AREA_END  0x10000u
#define STACK_TOP     (RAM_SIZE - 0x1000)
#define STACK_SIZE    (8ull << 20)
#define MMAP_TOP      (STACK_TOP - STACK_SIZE)
#define LOAD_BIAS_PIE 0x400000u      /* where a static-pie program goes */

/* Selectors: kernel code/data for the SYSCALL entry, user data and 64-bit code (SDM 3A §5.8.8). */
#define SEL_KCODE 0x08
#define SEL_KDATA 0x10
#define SEL_UDATA 0x1b
#define SEL_UCODE 0x23

#define UEXEC_FAIL 125

/*
 * The guest's file descriptors, each standing for a host one, so that a
 * program closing or dup2-ing "its" fd 5 can never touch a descriptor of
 * this process.  Only the host's stdout and stderr (and copies of them)
 * are writable.
 */
#define GUEST_FDS 64
typedef struct GuestFd {
    int host;                        /* -1: free */
    bool writable;
} GuestFd;

typedef struct Uexec {
    uint8_t *ram;
    GuestFd fd[GUEST_FDS];
    TCGCPU *cpu;
    uint64_t brk_start, brk_cur;
    uint64_t mmap_next;              /* grows down from MMAP_TOP */
    uint64_t mmap_floor;             /* nothing below: the program and its brk */
    int exit_status;
    bool exited;
    uint64_t syscalls;
} Uexec;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("uexec: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(UEXEC_FAIL);
}

/* Host pointer to guest [addr, addr+len), or NULL if any of it is outside RAM. */
static uint8_t *gptr(Uexec *u, uint64_t addr, uint64_t len)
{
    if (addr >= RAM_SIZE || len > RAM_SIZE - addr)
        return NULL;
    return u->ram + addr;
}

/* A NUL-terminated guest string of at most max bytes, or NULL. */
static const char *gstr(Uexec *u, uint64_t addr, size_t max)
{
    if (addr >= RAM_SIZE)
        return NULL;
    size_t room = MIN((uint64_t)max, RAM_SIZE - addr);
    const uint8_t *p = u->ram + addr;
    return memchr(p, 0, room) ? (const char *)p : NULL;
}

static int64_t neg_errno(void)
{
    return -(int64_t)errno;
}

/* The host descriptor behind guest fd g, or -1. */
static int host_fd(Uexec *u, uint64_t g)
{
    return g < GUEST_FDS ? u->fd[g].host : -1;
}

/* Install host descriptor h at the lowest free guest fd >= from; -EMFILE if none. */
static int64_t fd_install(Uexec *u, int h, bool writable, unsigned from)
{
    for (unsigned g = from; g < GUEST_FDS; g++) {
        if (u->fd[g].host < 0) {
            u->fd[g].host = h;
            u->fd[g].writable = writable;
            return g;
        }
    }
    close(h);
    return -EMFILE;
}

static void fd_release(Uexec *u, unsigned g)
{
    if (u->fd[g].host > 2)
        close(u->fd[g].host);
    u->fd[g].host = -1;
}

/* dup, dup2, dup3 (newfd < 0: dup). */
static int64_t sys_dup(Uexec *u, uint64_t oldfd, int64_t newfd)
{
    int h = host_fd(u, oldfd);
    if (h < 0 || newfd >= GUEST_FDS)
        return -EBADF;
    if ((uint64_t)newfd == oldfd)
        return newfd;
    int copy = fcntl(h, F_DUPFD_CLOEXEC, 3);
    if (copy < 0)
        return neg_errno();
    if (newfd < 0)
        return fd_install(u, copy, u->fd[oldfd].writable, 0);
    fd_release(u, (unsigned)newfd);
    u->fd[newfd].host = copy;
    u->fd[newfd].writable = u->fd[oldfd].writable;
    return newfd;
}

/* struct stat as the x86-64 Linux ABI lays it out (144 bytes). */
static void put_stat(uint8_t *b, const struct stat *st)
{
    memset(b, 0, 144);
    st64_le(b + 0, st->st_dev);
    st64_le(b + 8, st->st_ino);
    st64_le(b + 16, st->st_nlink);
    st32_le(b + 24, st->st_mode);
    st32_le(b + 28, st->st_uid);
    st32_le(b + 32, st->st_gid);
    st64_le(b + 40, st->st_rdev);
    st64_le(b + 48, st->st_size);
    st64_le(b + 56, st->st_blksize);
    st64_le(b + 64, st->st_blocks);
    st64_le(b + 72, st->st_atim.tv_sec);
    st64_le(b + 88, st->st_mtim.tv_sec);
    st64_le(b + 104, st->st_ctim.tv_sec);
}

static int64_t sys_write_fd(Uexec *u, uint64_t fd, uint64_t buf, uint64_t len)
{
    int h = host_fd(u, fd);
    if (h < 0 || !u->fd[fd].writable)
        return -EBADF;
    uint8_t *p = gptr(u, buf, len);
    if (!p)
        return -EFAULT;
    ssize_t n = write(h, p, len);
    return n < 0 ? neg_errno() : n;
}

/* open/openat: read-only opens of host files (anything else is refused). */
static int64_t sys_open(Uexec *u, uint64_t path, uint64_t flags)
{
    const char *p = gstr(u, path, 4096);
    if (!p)
        return -EFAULT;
    if ((flags & O_ACCMODE) != O_RDONLY)
        return -EACCES;
    int fd = open(p, O_RDONLY | O_CLOEXEC | (int)(flags & (O_DIRECTORY | O_NOFOLLOW)));
    return fd < 0 ? neg_errno() : fd_install(u, fd, false, 0);
}

/* mmap: anonymous private memory only, handed out downwards below the stack. */
static int64_t sys_mmap(Uexec *u, uint64_t len, uint64_t flags, int64_t fd)
{
    const uint64_t MAP_ANON_FLAG = 0x20, MAP_FIXED_FLAG = 0x10;
    if (!(flags & MAP_ANON_FLAG) || (flags & MAP_FIXED_FLAG) || fd != -1)
        return -ENODEV;
    if (len == 0 || len > RAM_SIZE)
        return -EINVAL;
    len = (len + 0xfff) & ~0xfffull;
    if (u->mmap_next - u->mmap_floor < len)
        return -ENOMEM;
    u->mmap_next -= len;
    memset(u->ram + u->mmap_next, 0, len);
    return (int64_t)u->mmap_next;
}

static int64_t sys_brk(Uexec *u, uint64_t want)
{
    if (want < u->brk_start || want > u->mmap_next)
        return (int64_t)u->brk_cur;         /* Linux: failure returns the old break */
    if (want > u->brk_cur)
        memset(u->ram + u->brk_cur, 0, want - u->brk_cur);
    u->brk_cur = want;
    u->mmap_floor = MAX(u->mmap_floor, (want + 0xfff) & ~0xfffull);
    return (int64_t)want;
}

static int64_t sys_uname(Uexec *u, uint64_t buf)
{
    static const char *const field[6] = { "Linux", "kestrel-uexec", "6.1.0", "#1", "x86_64", "" };
    uint8_t *p = gptr(u, buf, 6 * 65);
    if (!p)
        return -EFAULT;
    memset(p, 0, 6 * 65);
    for (int i = 0; i < 6; i++)
        memcpy(p + 65 * i, field[i], strlen(field[i]));
    return 0;
}

/* Linux x86-64 system call numbers (arch/x86/entry/syscalls/syscall_64.tbl). */
static int64_t do_syscall(Uexec *u, X86CPUState *s)
{
    uint64_t nr = s->regs[R_EAX];
    uint64_t a0 = s->regs[R_EDI], a1 = s->regs[R_ESI], a2 = s->regs[R_EDX];
    uint64_t a3 = s->regs[R_R10];
    u->syscalls++;

    switch (nr) {
    case 0: {                                   /* read */
        uint8_t *p = gptr(u, a1, a2);
        if (!p)
            return -EFAULT;
        int h = host_fd(u, a0);
        if (h < 0)
            return -EBADF;
        ssize_t n = read(h, p, a2);
        return n < 0 ? neg_errno() : n;
    }
    case 1:                                     /* write */
        return sys_write_fd(u, a0, a1, a2);
    case 20: {                                  /* writev */
        int64_t total = 0;
        if (a2 > 1024)
            return -EINVAL;
        for (uint64_t i = 0; i < a2; i++) {
            uint8_t *iov = gptr(u, a1 + 16 * i, 16);
            if (!iov)
                return -EFAULT;
            int64_t n = sys_write_fd(u, a0, ld64_le(iov), ld64_le(iov + 8));
            if (n < 0)
                return total ? total : n;
            total += n;
        }
        return total;
    }
    case 2:                                     /* open */
        return sys_open(u, a0, a1);
    case 257:                                   /* openat: only AT_FDCWD or an absolute path */
        if ((int32_t)a0 != AT_FDCWD) {
            const char *p = gstr(u, a1, 4096);
            if (p && p[0] != '/')
                return -EBADF;
        }
        return sys_open(u, a1, a2);
    case 3:                                     /* close */
        if (host_fd(u, a0) < 0)
            return -EBADF;
        fd_release(u, (unsigned)a0);
        return 0;
    case 32:                                    /* dup */
        return sys_dup(u, a0, -1);
    case 33: case 292:                          /* dup2, dup3 */
        return sys_dup(u, a0, (int64_t)(a1 & 0x7fffffff));
    case 4: case 6: case 5: case 262: {         /* stat, lstat, fstat, newfstatat */
        struct stat st;
        uint64_t buf = nr == 262 ? a2 : a1;
        uint8_t *b = gptr(u, buf, 144);
        int r;
        if (!b)
            return -EFAULT;
        if (nr == 5) {
            if (host_fd(u, a0) < 0)
                return -EBADF;
            r = fstat(host_fd(u, a0), &st);
        } else {
            const char *p = gstr(u, nr == 262 ? a1 : a0, 4096);
            if (!p)
                return -EFAULT;
            if (nr == 262 && p[0] == 0 && (a3 & AT_EMPTY_PATH))
                r = host_fd(u, a0) < 0 ? (errno = EBADF, -1) : fstat(host_fd(u, a0), &st);
            else if (nr == 262 && (int32_t)a0 != AT_FDCWD && p[0] != '/')
                return -EBADF;
            else
                r = (nr == 6 || (nr == 262 && (a3 & AT_SYMLINK_NOFOLLOW))) ? lstat(p, &st) : stat(p, &st);
        }
        if (r < 0)
            return neg_errno();
        put_stat(b, &st);
        return 0;
    }
    case 8: {                                   /* lseek */
        if (host_fd(u, a0) < 0)
            return -EBADF;
        off_t r = lseek(host_fd(u, a0), (off_t)a1, (int)a2);
        return r < 0 ? neg_errno() : r;
    }
    case 9:                                     /* mmap */
        return sys_mmap(u, a1, a3, (int64_t)s->regs[R_R8]);
    case 10: case 11: case 28:                  /* mprotect, munmap, madvise: nothing to do */
        return 0;
    case 25:                                    /* mremap: let the program fall back to mmap+copy */
        return -ENOMEM;
    case 12:                                    /* brk */
        return sys_brk(u, a0);
    case 13: case 14: case 131:                 /* rt_sigaction, rt_sigprocmask, sigaltstack */
        return 0;
    case 16:                                    /* ioctl: no terminals here */
        return -ENOTTY;
    case 21:                                    /* access */
    {
        const char *p = gstr(u, a0, 4096);
        if (!p)
            return -EFAULT;
        return access(p, (int)a1 & R_OK) < 0 ? neg_errno() : 0;
    }
    case 72:                                    /* fcntl: accept flag changes, report none */
        return 0;
    case 39: case 186: return 1000;             /* getpid, gettid */
    case 110: return 1;                         /* getppid */
    case 102: case 104: case 107: case 108:     /* getuid, getgid, geteuid, getegid */
        return 0;
    case 63:                                    /* uname */
        return sys_uname(u, a0);
    case 79: {                                  /* getcwd */
        uint8_t *p = gptr(u, a0, a1);
        if (!p || a1 < 2)
            return p ? -ERANGE : -EFAULT;
        memcpy(p, "/", 2);
        return 2;
    }
    case 158:                                   /* arch_prctl */
        if (a0 == 0x1002) {                     /* ARCH_SET_FS */
            s->seg[SEG_FS].base = a1;
            return 0;
        }
        if (a0 == 0x1003) {                     /* ARCH_GET_FS */
            uint8_t *p = gptr(u, a1, 8);
            if (!p)
                return -EFAULT;
            st64_le(p, s->seg[SEG_FS].base);
            return 0;
        }
        return -EINVAL;
    case 218:                                   /* set_tid_address */
        return 1000;
    case 273: case 334:                         /* set_robust_list, rseq */
        return -ENOSYS;
    case 228: {                                 /* clock_gettime */
        struct timespec ts;
        uint8_t *p = gptr(u, a1, 16);
        if (!p)
            return -EFAULT;
        clock_gettime((clockid_t)a0 == CLOCK_REALTIME ? CLOCK_REALTIME : CLOCK_MONOTONIC, &ts);
        st64_le(p, ts.tv_sec);
        st64_le(p + 8, ts.tv_nsec);
        return 0;
    }
    case 318: {                                 /* getrandom: deterministic bytes, runs repeat */
        uint8_t *p = gptr(u, a0, a1);
        if (!p)
            return -EFAULT;
        for (uint64_t i = 0; i < a1; i++)
            p[i] = (uint8_t)(0x5a + i * 7);
        return (int64_t)a1;
    }
    case 302:                                   /* prlimit64 */
        return -ENOSYS;
    case 60: case 231:                          /* exit, exit_group */
        u->exit_status = (int)(a0 & 0xff);
        u->exited = true;
        return 0;
    default:
        return -ENOSYS;
    }
}

static void set_seg(X86Segment *sg, uint16_t sel, uint8_t type, bool code64)
{
    memset(sg, 0, sizeof(*sg));
    sg->selector = sel;
    sg->limit = 0xffffffffu;
    sg->type = type;
    sg->s = 1;
    sg->dpl = sel & 3;
    sg->present = 1;
    sg->g = 1;
    sg->l = code64;
    sg->db = !code64;
}

/* The user-mode register state to resume at rip (after a system call or at entry). */
static void user_segments(X86CPUState *s)
{
    set_seg(&s->seg[SEG_CS], SEL_UCODE, 0xb, true);
    set_seg(&s->seg[SEG_SS], SEL_UDATA, 0x3, false);
}

/* Load the PT_LOAD segments; returns the bias and fills the auxv facts. */
static uint64_t load_elf(Uexec *u, const char *path, uint64_t *entry, uint64_t *phdr,
                         unsigned *phnum, unsigned *phent)
{
    gchar *img;
    gsize len;
    GError *err = NULL;
    if (!g_file_get_contents(path, &img, &len, &err))
        die("%s", err->message);
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
    if (len < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
        eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_machine != EM_X86_64 ||
        (eh->e_type != ET_EXEC && eh->e_type != ET_DYN))
        die("%s: not an x86-64 ELF executable", path);
    if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phoff > len ||
        (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > len - eh->e_phoff)
        die("%s: bad program header table", path);
    uint64_t bias = eh->e_type == ET_DYN ? LOAD_BIAS_PIE : 0;
    uint64_t end = 0;
    *phdr = 0;
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        const Elf64_Phdr *ph = (const Elf64_Phdr *)(img + eh->e_phoff) + i;
        if (ph->p_type == PT_INTERP)
            die("%s: dynamically linked (uexec runs static programs only)", path);
        if (ph->p_type != PT_LOAD)
            continue;
        uint64_t va = ph->p_vaddr + bias;
        if (ph->p_filesz > ph->p_memsz || ph->p_offset > len || ph->p_filesz > len - ph->p_offset ||
            va < ARG_AREA_END || va >= MMAP_TOP || ph->p_memsz > MMAP_TOP - va)
            die("%s: a loadable segment lies outside the %llu MiB uexec gives it", path,
                (unsigned long long)(RAM_SIZE >> 20));
        memcpy(u->ram + va, img + ph->p_offset, ph->p_filesz);
        if (ph->p_offset <= eh->e_phoff && eh->e_phoff - ph->p_offset < ph->p_filesz)
            *phdr = va + (eh->e_phoff - ph->p_offset);
        end = MAX(end, va + ph->p_memsz);
    }
    if (!end)
        die("%s: nothing to load", path);
    *entry = eh->e_entry + bias;
    *phnum = eh->e_phnum;
    *phent = eh->e_phentsize;
    g_free(img);
    return (end + 0xfff) & ~0xfffull;
}

/*
 * The initial stack (System V x86-64 ABI §3.4.1): argc, argv[], NULL, an
 * empty envp, the auxiliary vector.  Returns RSP.
 */
static uint64_t build_stack(Uexec *u, int argc, char **argv, uint64_t entry, uint64_t phdr,
                            unsigned phnum, unsigned phent)
{
    uint64_t str = ARG_AREA, argp[256];
    if (argc > 255)
        die("too many arguments");
    uint64_t random_bytes = str;
    memset(u->ram + str, 0x5a, 16);
    str += 16;
    for (int i = 0; i < argc; i++) {
        size_t n = strlen(argv[i]) + 1;
        if (n > ARG_AREA_END - str)
            die("arguments too long");
        memcpy(u->ram + str, argv[i], n);
        argp[i] = str;
        str += n;
    }
    const uint64_t auxv[][2] = {
        { AT_PHDR, phdr }, { AT_PHENT, phent }, { AT_PHNUM, phnum }, { AT_PAGESZ, 4096 },
        { AT_ENTRY, entry }, { AT_UID, 0 }, { AT_EUID, 0 }, { AT_GID, 0 }, { AT_EGID, 0 },
        { AT_SECURE, 0 }, { AT_RANDOM, random_bytes }, { AT_NULL, 0 },
    };
    uint64_t words = 1 + argc + 1 + 1 + 2 * ARRAY_LEN(auxv);
    uint64_t sp = (STACK_TOP - 8 * words - 256) & ~0xfull;
    uint8_t *p = u->ram + sp;
    st64_le(p, argc);
    p += 8;
    for (int i = 0; i < argc; i++, p += 8)
        st64_le(p, argp[i]);
    st64_le(p, 0);                              /* argv terminator */
    st64_le(p + 8, 0);                          /* empty envp */
    p += 16;
    for (size_t i = 0; i < ARRAY_LEN(auxv); i++, p += 16) {
        st64_le(p, auxv[i][0]);
        st64_le(p + 8, auxv[i][1]);
    }
    return sp;
}

static void build_page_tables_and_gdt(Uexec *u)
{
    uint8_t *r = u->ram;
    /* Identity map of RAM with 2 MiB user pages (SDM 3A §4.5); bit 7 = PS. */
    st64_le(r + PML4_ADDR, PDPT_ADDR | 7);
    st64_le(r + PDPT_ADDR, PD_ADDR | 7);
    for (uint64_t i = 0; i < RAM_SIZE >> 21; i++)
        st64_le(r + PD_ADDR + 8 * i, (i << 21) | 0x87);
    static const uint64_t gdt[] = {
        0,
        0x00af9b000000ffffull,      /* 0x08: kernel 64-bit code, where SYSCALL goes */
        0x00cf93000000ffffull,      /* 0x10: kernel data */
        0x00cff3000000ffffull,      /* 0x18: user data, DPL 3 */
        0x00affb000000ffffull,      /* 0x20: user 64-bit code, DPL 3 */
    };
    for (size_t i = 0; i < ARRAY_LEN(gdt); i++)
        st64_le(r + GDT_ADDR + 8 * i, gdt[i]);
    r[SYSCALL_ENTRY] = 0xf4;        /* HLT: the run loop returns TCG_RUN_HALTED */
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    bool verbose = false;
    int first = 1;
    GError *err = NULL;
    for (; first < argc && argv[first][0] == '-'; first++) {
        if (strcmp(argv[first], "-v") == 0) {
            verbose = true;
        } else if (strcmp(argv[first], "-d") == 0 && first + 1 < argc) {
            if (!log_parse_mask(argv[++first], &log_mask, &err))
                die("-d: %s", err->message);
        } else if (strcmp(argv[first], "-D") == 0 && first + 1 < argc) {
            if (!log_set_file(argv[++first], &err))
                die("-D: %s", err->message);
        } else {
            break;
        }
    }
    if (first >= argc || argv[first][0] == '-') {
        fprintf(stderr, "usage: uexec [-v] [-d ITEMS] [-D FILE] PROGRAM [ARG...]\n");
        return UEXEC_FAIL;
    }

    Uexec u = { 0 };
    for (unsigned g = 0; g < GUEST_FDS; g++)
        u.fd[g].host = g <= 2 ? (int)g : -1;
    u.fd[1].writable = u.fd[2].writable = true;
    MemoryRegion *root = memory_region_new_container("uexec", UINT64_MAX);
    MemoryRegion *ram = memory_region_new_ram("uexec.ram", RAM_SIZE, &err);
    if (!ram)
        die("%s", err->message);
    memory_region_add_subregion(root, 0, ram, 0);
    u.ram = memory_region_host_ptr(ram);

    uint64_t entry, phdr;
    unsigned phnum, phent;
    build_page_tables_and_gdt(&u);
    u.brk_start = u.brk_cur = load_elf(&u, argv[first], &entry, &phdr, &phnum, &phent);
    u.mmap_floor = u.brk_start;
    u.mmap_next = MMAP_TOP;

    X86CPUState s;
    memset(&s, 0, sizeof(s));
    s.rflags = X86_RFLAGS_FIXED;
    s.rip = entry;
    s.regs[R_ESP] = build_stack(&u, argc - first, argv + first, entry, phdr, phnum, phent);
    s.gdt.base = GDT_ADDR;
    s.gdt.limit = 5 * 8 - 1;
    s.ldt.unusable = 1;
    s.tr.type = 0xb;
    s.tr.present = 1;
    s.tr.limit = 0x67;
    s.cr0 = X86_CR0_PE | X86_CR0_MP | X86_CR0_ET | X86_CR0_NE | X86_CR0_WP | X86_CR0_PG;
    s.cr3 = PML4_ADDR;
    s.cr4 = X86_CR4_PAE | (1u << 9) | (1u << 10);       /* OSFXSR, OSXMMEXCPT: SSE usable */
    s.efer = X86_EFER_SCE | X86_EFER_LME | X86_EFER_LMA | X86_EFER_NXE;
    for (int i = 0; i < SEG__COUNT; i++)
        set_seg(&s.seg[i], SEL_UDATA, 0x3, false);
    user_segments(&s);

    u.cpu = tcg_cpu_new(address_space_new("uexec", root), 0);
    u.cpu->stop_on_exception = true;
    cpu_from_x86_state(u.cpu, &s);
    /* SYSCALL (SDM 2B): CS from STAR[47:32], RIP from LSTAR, RFLAGS &= ~FMASK. */
    u.cpu->lstar = SYSCALL_ENTRY;
    u.cpu->star = (uint64_t)SEL_KCODE << 32;

    double t0 = now_seconds();
    while (!u.exited) {
        TCGRunResult r = tcg_cpu_exec(u.cpu, 1000000);
        if (r == TCG_RUN_BUDGET || r == TCG_RUN_EXIT)
            continue;
        cpu_to_x86_state(u.cpu, &s);
        if (r == TCG_RUN_EXCEPTION)
            die("%s: CPU exception %d (error code %#x) at rip %#llx", argv[first],
                u.cpu->stopped_vec, u.cpu->stopped_err, (unsigned long long)s.rip);
        if (u.cpu->shutdown || s.seg[SEG_CS].selector != SEL_KCODE)
            die("%s: the CPU stopped outside a system call at rip %#llx", argv[first],
                (unsigned long long)s.rip);
        /* Back from the system call as SYSRET would: RCX is RIP, R11 RFLAGS (SDM 2B "SYSCALL"). */
        s.regs[R_EAX] = (uint64_t)do_syscall(&u, &s);
        s.rip = s.regs[R_ECX];
        s.rflags = (s.regs[R_R11] & 0x3c7fd7) | X86_RFLAGS_FIXED;
        user_segments(&s);
        cpu_from_x86_state(u.cpu, &s);
        u.cpu->halted = false;
    }
    double t = now_seconds() - t0;
    if (verbose)
        fprintf(stderr, "uexec: %llu guest instructions, %llu system calls, %u blocks, %.3f s, "
                "%.0f MIPS\n", (unsigned long long)u.cpu->icount, (unsigned long long)u.syscalls,
                tb_count(), t, t > 0 ? u.cpu->icount / t / 1e6 : 0.0);
    return u.exit_status;
}
