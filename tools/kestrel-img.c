/*
 * kestrel-img: create, inspect, check and convert disk images, with
 * qemu-img's command names, options and output (qemu-img(1), QEMU 7.2; fact
 * sheet /work/shared/docs/qcow2-and-block.md §10).
 *
 * Implemented: create (raw, qcow2, -o preallocation=), info (human,
 * --output=json, --backing-chain), check (-r leaks fixes leaks, -r all also
 * clears L1/L2 entries that are misaligned, past the end of the file or
 * point into metadata, and rebuilds the refcounts), convert (-c, -O, -f,
 * -o, -S, -p, -q, -U, -B/-F, -n, --target-is-zero, several sources), resize
 * (grow; raw also shrinks), snapshot -l/-c/-d/-a, map, compare, rebase
 * (safe and -u), commit (-d, -b), measure (qcow2 and raw targets), amend
 * (-o compat=, lazy_refcounts=, refcount_bits=, size= to grow), bench (on
 * the asynchronous blk_aio_* path, like qemu-img bench on QEMU's).
 * Not yet: measure -l, shrinking qcow2 (resize --shrink, amend -o size=).
 */
#include "block/block-int.h"
#include "block/qcow2.h"
#include "kestrel/opts.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static bool quiet;

static void G_GNUC_PRINTF(1, 2) G_GNUC_NORETURN die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "kestrel-img: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static void die_gerror(GError *err)
{
    die("%s", err->message);
}

/* qemu's size_to_str: three significant digits and a binary unit. */
static char *size_to_str(uint64_t v)
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
    int i = 0;
    double d = v;

    while (d >= 1024 && i < 6) {
        d /= 1024;
        i++;
    }
    return g_strdup_printf("%0.3g %s", d, units[i]);
}

static void json_str(GString *out, const char *s)
{
    g_string_append_c(out, '"');
    for (; *s; s++) {
        unsigned char c = *s;
        if (c == '"' || c == '\\')
            g_string_append_printf(out, "\\%c", c);
        else if (c < 0x20)
            g_string_append_printf(out, "\\u%04x", c);
        else
            g_string_append_c(out, c);
    }
    g_string_append_c(out, '"');
}

static BlockDriverState *open_image(const char *filename, const char *fmt, int flags)
{
    GError *err = NULL;
    BlockDriverState *bs = bdrv_open(filename, fmt, flags, &err);
    if (!bs)
        die_gerror(err);
    return bs;
}

/* ---- create ---- */

static bool create_raw(const char *filename, uint64_t size, const char *prealloc, GError **errp)
{
    FILE *f = fopen(filename, "ab");
    if (!f) {
        kestrel_set_error(errp, "Could not create '%s': %s", filename, g_strerror(errno));
        return false;
    }
    fclose(f);
    BlockDriverState *file = bdrv_open_protocol(filename, BDRV_O_RDWR, errp);
    if (!file)
        return false;
    int ret = bdrv_truncate(file, 0);
    size = (size + 511) & ~511ull;        /* whole sectors, as qemu-img creates */
    if (ret == 0)
        ret = bdrv_truncate(file, size);
    if (ret == 0 && prealloc && (!strcmp(prealloc, "falloc") || !strcmp(prealloc, "full")) && size)
        ret = bdrv_pwrite_zeroes(file, 0, size, 0);
    bdrv_close(file);
    if (ret < 0) {
        kestrel_set_error(errp, "Could not resize '%s': %s", filename, g_strerror(-ret));
        return false;
    }
    return true;
}

typedef struct CreateParams {
    const char *fmt;
    Qcow2CreateOptions q;
    const char *prealloc;
    char *opts_storage;
} CreateParams;

static void parse_create_opts(CreateParams *p, const char *optstr)
{
    GError *err = NULL;
    KOpts *o = kopts_parse(optstr, NULL, &err);
    if (!o)
        die_gerror(err);
    for (size_t i = 0; i < kopts_count(o); i++) {
        const char *k = kopts_key(o, i), *v = kopts_value(o, i);
        uint64_t n;
        if (!strcmp(k, "cluster_size")) {
            if (!parse_size(v, 0, &n) || n > (1u << 21))
                die("Invalid cluster_size '%s'", v);
            p->q.cluster_size = n;
        } else if (!strcmp(k, "backing_file")) {
            p->q.backing_file = g_strdup(v);
        } else if (!strcmp(k, "backing_fmt")) {
            p->q.backing_fmt = g_strdup(v);
        } else if (!strcmp(k, "preallocation")) {
            p->prealloc = g_strdup(v);
        } else if (!strcmp(k, "compat")) {
            if (!strcmp(v, "0.10") || !strcmp(v, "v2"))
                p->q.version = 2;
            else if (!strcmp(v, "1.1") || !strcmp(v, "v3"))
                p->q.version = 3;
            else
                die("Invalid compatibility level: '%s'", v);
        } else if (!strcmp(k, "lazy_refcounts")) {
            if (!parse_bool(v, &p->q.lazy_refcounts))
                die("Invalid lazy_refcounts '%s'", v);
        } else if (!strcmp(k, "refcount_bits")) {
            if (!parse_uint(v, &n) || n == 0 || n > 64)
                die("Invalid refcount_bits '%s'", v);
            p->q.refcount_bits = n;
        } else if (!strcmp(k, "size")) {
            if (!parse_size(v, 0, &n))
                die("Invalid size '%s'", v);
            p->q.size = n;
        } else if (!strcmp(k, "compression_type")) {
            if (strcmp(v, "zlib"))
                die("compression_type=%s is not supported (zlib only)", v);
        } else if (!strcmp(k, "extended_l2")) {
            bool b;
            if (!parse_bool(v, &b) || b)
                die("extended_l2=on is not supported");
        } else {
            die("Invalid parameter '%s'", k);
        }
        kopts_mark_used(o, i);
    }
    kopts_free(o);
}

static int do_create_image(const char *filename, CreateParams *p)
{
    GError *err = NULL;
    bool ok;

    if (!strcmp(p->fmt, "raw")) {
        if (p->q.backing_file)
            die("'raw' does not support backing files");
        if (!quiet)
            printf("Formatting '%s', fmt=raw size=%" PRIu64 "\n", filename, p->q.size);
        ok = create_raw(filename, p->q.size, p->prealloc, &err);
    } else if (!strcmp(p->fmt, "qcow2")) {
        p->q.preallocation = p->prealloc;
        if (p->q.backing_file && !p->q.backing_fmt) {
            g_autofree char *path = bdrv_resolve_backing(filename, p->q.backing_file);
            BlockDriverState *b = bdrv_open(path, NULL, BDRV_O_NO_BACKING | BDRV_O_SHARE_ALL, NULL);
            fprintf(stderr, "kestrel-img: %s: Backing file specified without backing format\n",
                    filename);
            if (b) {
                fprintf(stderr, "Detected format of %s.\n", b->drv->name);
                bdrv_close(b);
            }
            return 1;
        }
        if (p->q.backing_file && p->q.size == 0) {
            g_autofree char *path = bdrv_resolve_backing(filename, p->q.backing_file);
            BlockDriverState *b = open_image(path, p->q.backing_fmt,
                                             BDRV_O_NO_BACKING | BDRV_O_SHARE_ALL);
            p->q.size = bdrv_getlength(b);
            bdrv_close(b);
        }
        if (!quiet) {
            printf("Formatting '%s', fmt=qcow2 cluster_size=%u extended_l2=off "
                   "compression_type=zlib size=%" PRIu64, filename,
                   p->q.cluster_size ? p->q.cluster_size : 65536, p->q.size);
            if (p->q.backing_file)
                printf(" backing_file=%s backing_fmt=%s", p->q.backing_file, p->q.backing_fmt);
            printf(" lazy_refcounts=%s refcount_bits=%d\n", p->q.lazy_refcounts ? "on" : "off",
                   p->q.refcount_bits ? p->q.refcount_bits : 16);
        }
        ok = qcow2_create(filename, &p->q, &err);
    } else {
        die("Unknown file format '%s'", p->fmt);
    }
    if (!ok) {
        fprintf(stderr, "kestrel-img: %s: %s\n", filename, err->message);
        g_error_free(err);
        return 1;
    }
    return 0;
}

static int cmd_create(int argc, char **argv)
{
    CreateParams p = { .fmt = "raw" };
    const char *optstr = NULL;
    int c;

    while ((c = getopt(argc, argv, "f:b:F:o:uq")) != -1) {
        switch (c) {
        case 'f': p.fmt = optarg; break;
        case 'b': p.q.backing_file = optarg; break;
        case 'F': p.q.backing_fmt = optarg; break;
        case 'o': optstr = optarg; break;
        case 'u': break;
        case 'q': quiet = true; break;
        default: return 1;
        }
    }
    if (optstr)
        parse_create_opts(&p, optstr);
    if (optind >= argc)
        die("Expecting image file name");
    const char *filename = argv[optind++];
    if (optind < argc) {
        uint64_t size;
        if (!parse_size(argv[optind], 0, &size))
            die("Invalid image size specified. You may use k, M, G, T, P or E suffixes for "
                "kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
        p.q.size = size;
        optind++;
    } else if (!p.q.backing_file) {
        die("Image creation needs a size parameter");
    }
    if (optind < argc)
        die("Unexpected argument: %s", argv[optind]);
    return do_create_image(filename, &p);
}

/* ---- info ---- */

static uint64_t disk_usage(const char *filename)
{
    struct stat st;
    return stat(filename, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
}

static void info_json(GString *o, BlockDriverState *bs, const char *indent)
{
    BlockImageInfo info = { 0 };
    const char *in = indent;

    if (bs->drv->get_info)
        bs->drv->get_info(bs, &info);
    g_string_append_printf(o, "%s{\n", in);
    if (info.nb_snapshots) {
        g_string_append_printf(o, "%s    \"snapshots\": [\n", in);
        for (int i = 0; i < info.nb_snapshots; i++) {
            BlockSnapshotInfo *sn = &info.snapshots[i];
            g_string_append_printf(o, "%s        {\n%s            \"icount\": %" PRId64 ",\n"
                                   "%s            \"vm-clock-nsec\": %" PRIu64 ",\n"
                                   "%s            \"name\": ", in, in, sn->icount, in,
                                   sn->vm_clock_nsec % 1000000000, in);
            json_str(o, sn->name);
            g_string_append_printf(o, ",\n%s            \"date-sec\": %u,\n"
                                   "%s            \"date-nsec\": %u,\n"
                                   "%s            \"vm-clock-sec\": %" PRIu64 ",\n"
                                   "%s            \"id\": ", in, sn->date_sec, in, sn->date_nsec,
                                   in, sn->vm_clock_nsec / 1000000000, in);
            json_str(o, sn->id);
            g_string_append_printf(o, ",\n%s            \"vm-state-size\": %" PRIu64 "\n%s        }%s\n",
                                   in, sn->vm_state_size, in, i + 1 < info.nb_snapshots ? "," : "");
        }
        g_string_append_printf(o, "%s    ],\n", in);
    }
    g_string_append_printf(o, "%s    \"virtual-size\": %" PRId64 ",\n%s    \"filename\": ", in,
                           bdrv_getlength(bs), in);
    json_str(o, bs->filename);
    g_string_append(o, ",\n");
    if (info.cluster_size)
        g_string_append_printf(o, "%s    \"cluster-size\": %" PRIu64 ",\n", in, info.cluster_size);
    g_string_append_printf(o, "%s    \"format\": \"%s\",\n", in, bs->drv->name);
    g_string_append_printf(o, "%s    \"actual-size\": %" PRIu64 ",\n", in, disk_usage(bs->filename));
    if (bs->backing_filename) {
        g_autofree char *full = bdrv_resolve_backing(bs->filename, bs->backing_filename);
        g_string_append_printf(o, "%s    \"backing-filename\": ", in);
        json_str(o, bs->backing_filename);
        g_string_append_printf(o, ",\n%s    \"full-backing-filename\": ", in);
        json_str(o, full);
        g_string_append(o, ",\n");
        if (bs->backing_format) {
            g_string_append_printf(o, "%s    \"backing-filename-format\": ", in);
            json_str(o, bs->backing_format);
            g_string_append(o, ",\n");
        }
    }
    if (info.version) {
        g_string_append_printf(o, "%s    \"format-specific\": {\n%s        \"type\": \"qcow2\",\n"
                               "%s        \"data\": {\n", in, in, in);
        g_string_append_printf(o, "%s            \"compat\": \"%s\",\n", in,
                               info.version == 2 ? "0.10" : "1.1");
        if (info.version >= 3)
            g_string_append_printf(o, "%s            \"compression-type\": \"%s\",\n"
                                   "%s            \"lazy-refcounts\": %s,\n", in,
                                   info.compression_type, in,
                                   info.lazy_refcounts ? "true" : "false");
        g_string_append_printf(o, "%s            \"refcount-bits\": %d,\n"
                               "%s            \"corrupt\": %s", in, info.refcount_bits, in,
                               info.corrupt ? "true" : "false");
        if (info.version >= 3)
            g_string_append_printf(o, ",\n%s            \"extended-l2\": false", in);
        g_string_append_printf(o, "\n%s        }\n%s    },\n", in, in);
    }
    g_string_append_printf(o, "%s    \"dirty-flag\": %s\n%s}", in, info.dirty ? "true" : "false", in);
}

/* The "Snapshot list:" table of info and snapshot -l, in qemu-img's layout. */
static void print_snapshot_list(const BlockImageInfo *info)
{
    if (!info->nb_snapshots)
        return;
    printf("Snapshot list:\nID        TAG               VM SIZE                DATE     VM CLOCK     ICOUNT\n");
    for (int i = 0; i < info->nb_snapshots; i++) {
        const BlockSnapshotInfo *sn = &info->snapshots[i];
        time_t t = sn->date_sec;
        struct tm tm;
        char date[32];
        localtime_r(&t, &tm);
        strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
        g_autofree char *vms = size_to_str(sn->vm_state_size);
        uint64_t ms = sn->vm_clock_nsec / 1000000;
        /* qemu-img leaves ICOUNT blank when the snapshot records none (-1). */
        g_autofree char *ic = sn->icount < 0 ? g_strdup("") :
                              g_strdup_printf("%" PRId64, sn->icount);
        printf("%-9s %-17s %7s %19s %02" PRIu64 ":%02" PRIu64 ":%02" PRIu64 ".%03" PRIu64
               " %10s\n", sn->id, sn->name, vms, date, ms / 3600000,
               ms / 60000 % 60, ms / 1000 % 60, ms % 1000, ic);
    }
}
static void info_human(BlockDriverState *bs)
{
    BlockImageInfo info = { 0 };
    int64_t vsize = bdrv_getlength(bs);

    if (bs->drv->get_info)
        bs->drv->get_info(bs, &info);
    g_autofree char *vs = size_to_str(vsize), *ds = size_to_str(disk_usage(bs->filename));
    printf("image: %s\nfile format: %s\nvirtual size: %s (%" PRId64 " bytes)\ndisk size: %s\n",
           bs->filename, bs->drv->name, vs, vsize, ds);
    if (info.cluster_size)
        printf("cluster_size: %" PRIu64 "\n", info.cluster_size);
    if (bs->backing_filename) {
        g_autofree char *full = bdrv_resolve_backing(bs->filename, bs->backing_filename);
        if (strcmp(full, bs->backing_filename))
            printf("backing file: %s (actual path: %s)\n", bs->backing_filename, full);
        else
            printf("backing file: %s\n", bs->backing_filename);
        if (bs->backing_format)
            printf("backing file format: %s\n", bs->backing_format);
    }
    print_snapshot_list(&info);
    if (info.version) {
        printf("Format specific information:\n    compat: %s\n", info.version == 2 ? "0.10" : "1.1");
        if (info.version >= 3)
            printf("    compression type: %s\n    lazy refcounts: %s\n", info.compression_type,
                   info.lazy_refcounts ? "true" : "false");
        printf("    refcount bits: %d\n    corrupt: %s\n", info.refcount_bits,
               info.corrupt ? "true" : "false");
        if (info.version >= 3)
            printf("    extended l2: false\n");
    }
}

enum { OPT_OUTPUT = 256, OPT_BACKING_CHAIN };

static int cmd_info(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "output", required_argument, NULL, OPT_OUTPUT },
        { "backing-chain", no_argument, NULL, OPT_BACKING_CHAIN },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *output = "human";
    bool chain = false;
    int flags = BDRV_O_NO_BACKING, c;

    while ((c = getopt_long(argc, argv, "f:U", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': fmt = optarg; break;
        case 'U': flags |= BDRV_O_SHARE_ALL; break;
        case OPT_OUTPUT: output = optarg; break;
        case OPT_BACKING_CHAIN: chain = true; break;
        default: return 1;
        }
    }
    if (optind != argc - 1)
        die("Expecting one image file name");
    bool json = !strcmp(output, "json");
    if (!json && strcmp(output, "human"))
        die("--output must be used with human or json as argument.");

    if (chain)
        flags &= ~BDRV_O_NO_BACKING;
    BlockDriverState *top = open_image(argv[optind], fmt, flags), *bs;
    GString *o = g_string_new(NULL);
    if (json && chain)
        g_string_append(o, "[\n");
    for (bs = top; bs; bs = chain ? bs->backing : NULL) {
        if (json) {
            info_json(o, bs, chain ? "    " : "");
            g_string_append(o, chain && bs->backing ? ",\n" : "\n");
        } else {
            if (bs != top)
                printf("\n");
            info_human(bs);
        }
    }
    if (json && chain)
        g_string_append(o, "]\n");
    fputs(o->str, stdout);
    g_string_free(o, TRUE);
    bdrv_close(top);
    return 0;
}

/* ---- check ---- */

static void check_print(const char *filename, const char *fmt, const BlockCheckResult *r, bool json)
{
    if (json) {
        printf("{\n    \"image-end-offset\": %" PRIu64 ",\n    \"total-clusters\": %" PRIu64 ",\n"
               "    \"check-errors\": %d,\n", r->image_end_offset, r->total_clusters, r->check_errors);
        if (r->leaks)
            printf("    \"leaks\": %d,\n", r->leaks);
        if (r->corruptions)
            printf("    \"corruptions\": %d,\n", r->corruptions);
        if (r->leaks_fixed)
            printf("    \"leaks-fixed\": %d,\n", r->leaks_fixed);
        printf("    \"allocated-clusters\": %" PRIu64 ",\n    \"filename\": ", r->allocated_clusters);
        GString *s = g_string_new(NULL);
        json_str(s, filename);
        printf("%s,\n    \"format\": \"%s\",\n", s->str, fmt);
        g_string_free(s, TRUE);
        printf("    \"fragmented-clusters\": %" PRIu64 ",\n    \"compressed-clusters\": %" PRIu64 "\n}\n",
               r->fragmented_clusters, r->compressed_clusters);
        return;
    }
    if (!r->corruptions && !r->leaks && !r->check_errors)
        printf("No errors were found on the image.\n");
    if (r->corruptions)
        printf("\n%d errors were found on the image.\nData may be corrupted, or further writes "
               "to the image may corrupt it.\n", r->corruptions);
    if (r->leaks)
        printf("\n%d leaked clusters were found on the image.\nThis means waste of disk space, "
               "but no harm to data.\n", r->leaks);
    if (r->check_errors)
        printf("\n%d internal errors have occurred during the check.\n", r->check_errors);
    if (r->total_clusters && r->allocated_clusters)
        printf("%" PRIu64 "/%" PRIu64 " = %0.2f%% allocated, %0.2f%% fragmented, %0.2f%% "
               "compressed clusters\n", r->allocated_clusters, r->total_clusters,
               r->allocated_clusters * 100.0 / r->total_clusters,
               r->fragmented_clusters * 100.0 / r->allocated_clusters,
               r->compressed_clusters * 100.0 / r->allocated_clusters);
    if (r->image_end_offset)
        printf("Image end offset: %" PRIu64 "\n", r->image_end_offset);
}

static int cmd_check(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "output", required_argument, NULL, OPT_OUTPUT },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *output = "human", *repair = NULL;
    int flags = BDRV_O_NO_BACKING, c, fix = 0;

    while ((c = getopt_long(argc, argv, "f:r:T:Uq", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': fmt = optarg; break;
        case 'r': repair = optarg; break;
        case 'T': break;
        case 'U': flags |= BDRV_O_SHARE_ALL; break;
        case 'q': quiet = true; break;
        case OPT_OUTPUT: output = optarg; break;
        default: return 1;
        }
    }
    if (optind != argc - 1)
        die("Expecting one image file name");
    bool json = !strcmp(output, "json");
    if (repair) {
        if (!strcmp(repair, "leaks"))
            fix = BDRV_FIX_LEAKS;
        else if (!strcmp(repair, "all"))
            fix = BDRV_FIX_LEAKS | BDRV_FIX_ERRORS;
        else
            die("Unknown option value for -r (expecting 'leaks' or 'all'): %s", repair);
        if (flags & BDRV_O_SHARE_ALL)
            die("force-share=on can only be used with read-only images");
        flags |= BDRV_O_RDWR;
    }
    GError *err = NULL;
    BlockDriverState *bs = bdrv_open(argv[optind], fmt, flags, &err);
    if (!bs) {
        fprintf(stderr, "kestrel-img: %s\n", err->message);
        g_error_free(err);
        return 1;
    }
    if (!bs->drv->check) {
        fprintf(stderr, "kestrel-img: This image format does not support checks\n");
        bdrv_close(bs);
        return 63;
    }
    BlockCheckResult r;
    FILE *report = quiet ? fopen("/dev/null", "w") : stderr;
    int ret = bs->drv->check(bs, &r, fix, report);
    bool fixed = r.leaks_fixed || r.corruptions_fixed;
    if (ret == 0 && fixed && !json && !quiet)
        printf("The following inconsistencies were found and repaired:\n\n"
               "    %d leaked clusters\n    %d corruptions\n\nDouble checking the fixed image now...\n",
               r.leaks_fixed, r.corruptions_fixed);
    if (ret == 0 && fixed)
        ret = bs->drv->check(bs, &r, 0, report);
    if (report != stderr)
        fclose(report);
    if (!quiet)
        check_print(argv[optind], bs->drv->name, &r, json);
    bdrv_close(bs);
    if (ret < 0 || r.check_errors)
        return 1;
    if (r.corruptions)
        return 2;
    if (r.leaks)
        return 3;
    return 0;
}

/* ---- convert ---- */

/* Fill buf with n bytes of bs at pos; zeros past its end. */
static int pread_padded(BlockDriverState *bs, uint64_t pos, uint8_t *buf, uint64_t n)
{
    int64_t len = bdrv_getlength(bs);
    if (len < 0)
        return (int)len;
    memset(buf, 0, n);
    if (pos >= (uint64_t)len)
        return 0;
    return bdrv_pread(bs, pos, buf, MIN(n, (uint64_t)len - pos));
}

enum { OPT_TARGET_IS_ZERO = 300 };

/*
 * qemu-img convert.  -B makes the new image an overlay of BACKING and leaves
 * every output cluster whose content equals BACKING's unallocated (qemu-img
 * skips what is unallocated in the source's top layer; comparing content
 * gives the same image for that case and a smaller one for any other source).
 * -n writes into an existing image instead of creating one: nothing can be
 * assumed about what it holds, so zero blocks are written as zeros unless
 * --target-is-zero says it already reads as zeros.
 */
static int cmd_convert(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "target-is-zero", no_argument, NULL, OPT_TARGET_IS_ZERO },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *in_fmt = NULL, *out_fmt = NULL, *optstr = NULL;
    const char *backing = NULL, *backing_fmt = NULL;
    bool compress = false, progress = false, skip_create = false, target_is_zero = false;
    uint64_t sparse = 4096;
    int src_flags = BDRV_O_NO_FLUSH, c;

    while ((c = getopt_long(argc, argv, "cpqnf:O:o:t:T:S:Um:WB:F:", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': compress = true; break;
        case 'p': progress = true; break;
        case 'q': quiet = true; break;
        case 'n': skip_create = true; break;
        case 'f': in_fmt = optarg; break;
        case 'O': out_fmt = optarg; break;
        case 'o': optstr = optarg; break;
        case 'B': backing = optarg; break;
        case 'F': backing_fmt = optarg; break;
        case 't': case 'T': case 'm': case 'W': break;
        case 'S':
            if (!parse_size(optarg, 0, &sparse))
                die("Invalid buffer size for sparse output specified");
            break;
        case 'U': src_flags |= BDRV_O_SHARE_ALL; break;
        case OPT_TARGET_IS_ZERO: target_is_zero = true; break;
        default: return 1;
        }
    }
    if (argc - optind < 2)
        die("Expecting source and destination file names");
    if (target_is_zero && !skip_create)
        die("--target-is-zero requires use of -n flag");
    if (!out_fmt)
        out_fmt = "raw";
    int nsrc = argc - optind - 1;
    const char *dst = argv[argc - 1];
    BlockDriverState **srcs = g_new0(BlockDriverState *, nsrc);
    uint64_t total = 0;
    for (int i = 0; i < nsrc; i++) {
        srcs[i] = open_image(argv[optind + i], in_fmt, src_flags);
        total += bdrv_getlength(srcs[i]);
    }
    CreateParams p = { .fmt = out_fmt };
    if (optstr)
        parse_create_opts(&p, optstr);
    if (backing)
        p.q.backing_file = backing;
    if (backing_fmt)
        p.q.backing_fmt = backing_fmt;
    if (p.q.backing_file && !p.q.backing_fmt)
        die("Use of backing file requires explicit backing format");
    p.q.size = total;
    if (compress && strcmp(out_fmt, "qcow2"))
        die("Compression not supported for this file format");
    if (!skip_create) {
        bool save_quiet = quiet;
        quiet = true;
        if (do_create_image(dst, &p))
            return 1;
        quiet = save_quiet;
    }
    BlockDriverState *out = open_image(dst, out_fmt, BDRV_O_RDWR | BDRV_O_NO_FLUSH | BDRV_O_UNMAP);
    if (skip_create && (uint64_t)bdrv_getlength(out) < total) {
        bdrv_close(out);
        die("output file is smaller than input file");
    }
    /* Content the new image shows where it has nothing of its own. */
    BlockDriverState *under = p.q.backing_file && !skip_create ? out->backing : NULL;
    bool reads_zero = skip_create ? target_is_zero : !under;

    uint64_t ocs = out->drv->cluster_size ? out->drv->cluster_size(out) : 0;
    uint64_t chunk = 2 << 20;
    if (compress)
        chunk = ocs;
    if (sparse == 0 || sparse > chunk)
        sparse = sparse ? chunk : 0;
    /* With a backing file the unit of "same as below" is the output cluster. */
    uint64_t gran = under ? MIN(ocs ? ocs : 65536, chunk) : sparse;
    uint8_t *buf = g_malloc(chunk), *ubuf = under ? g_malloc(chunk) : NULL;
    uint64_t dpos = 0;
    int ret = 0;
    double last_pct = -1;
    for (int i = 0; i < nsrc && ret == 0; i++) {
        uint64_t len = bdrv_getlength(srcs[i]);
        for (uint64_t pos = 0; pos < len && ret == 0; pos += chunk) {
            uint64_t n = MIN(chunk, len - pos);
            ret = bdrv_pread(srcs[i], pos, buf, n);
            if (ret < 0) {
                fprintf(stderr, "kestrel-img: error while reading at byte %" PRIu64 ": %s\n",
                        pos, g_strerror(-ret));
                break;
            }
            if (under && (ret = pread_padded(under, dpos + pos, ubuf, n)) < 0) {
                fprintf(stderr, "kestrel-img: error while reading the backing file at byte %"
                        PRIu64 ": %s\n", dpos + pos, g_strerror(-ret));
                break;
            }
            if (compress) {
                memset(buf + n, 0, chunk - n);
                bool zero = buf_is_zero(buf, chunk);
                if (under && !memcmp(buf, ubuf, n))
                    ;       /* same as the backing file: leave unallocated */
                else if (zero && !reads_zero)
                    ret = bdrv_pwrite_zeroes(out, dpos + pos, n, 0);
                else if (!zero)
                    ret = out->drv->pwrite_compressed(out, dpos + pos, buf);
            } else if (gran) {
                /*
                 * Per block: the same as what the target shows already is
                 * skipped, zeros become a zero write, anything else is data.
                 */
                for (uint64_t k = 0; k < n && ret == 0;) {
                    uint64_t m = MIN(gran - ((dpos + pos + k) % gran), n - k);
                    if (under && !memcmp(buf + k, ubuf + k, m))
                        ;
                    else if (!buf_is_zero(buf + k, m))
                        ret = bdrv_pwrite(out, dpos + pos + k, buf + k, m);
                    else if (!reads_zero)
                        ret = bdrv_pwrite_zeroes(out, dpos + pos + k, m, 0);
                    k += m;
                }
            } else {
                ret = bdrv_pwrite(out, dpos + pos, buf, n);
            }
            if (ret < 0) {
                fprintf(stderr, "kestrel-img: error while writing at byte %" PRIu64 ": %s\n",
                        dpos + pos, g_strerror(-ret));
                break;
            }
            if (progress && !quiet && total) {
                double pct = (dpos + pos + n) * 100.0 / total;
                if (pct - last_pct >= 1 || pct >= 100) {
                    printf("    (%0.2f/100%%)\r", pct);
                    fflush(stdout);
                    last_pct = pct;
                }
            }
        }
        dpos += len;
    }
    if (progress && !quiet)
        printf("    (100.00/100%%)\n");
    if (ret == 0)
        ret = bdrv_flush(out);
    g_free(buf);
    g_free(ubuf);
    bdrv_close(out);
    for (int i = 0; i < nsrc; i++)
        bdrv_close(srcs[i]);
    g_free(srcs);
    return ret < 0 ? 1 : 0;
}

/* ---- resize ---- */

static int cmd_resize(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "shrink", no_argument, NULL, 's' },
        { "preallocation", required_argument, NULL, 'P' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL;
    bool shrink = false;
    int c;

    /* "-1G" is a size, not an option: stop option parsing at the file name. */
    while ((c = getopt_long(argc, argv, "+f:q", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': fmt = optarg; break;
        case 'q': quiet = true; break;
        case 's': shrink = true; break;
        case 'P':
            if (strcmp(optarg, "off"))
                die("--preallocation=%s is not supported yet", optarg);
            break;
        default: return 1;
        }
    }
    if (argc - optind != 2)
        die("Expecting image file name and size");
    const char *sz = argv[optind + 1];
    int sign = 0;
    if (*sz == '+' || *sz == '-')
        sign = *sz++ == '+' ? 1 : -1;
    uint64_t n;
    if (!parse_size(sz, 0, &n))
        die("Invalid image size specified. You may use k, M, G, T, P or E suffixes for "
            "kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
    BlockDriverState *bs = open_image(argv[optind], fmt, BDRV_O_RDWR | BDRV_O_NO_BACKING);
    uint64_t cur = bdrv_getlength(bs);
    uint64_t want = sign > 0 ? cur + n : sign < 0 ? (n > cur ? 0 : cur - n) : n;
    want = (want + 511) & ~511ull;
    if (want < cur && !shrink) {
        fprintf(stderr, "kestrel-img: Use the --shrink option to perform a shrink operation.\n"
                "kestrel-img: warning: Shrinking an image will delete all data beyond the "
                "shrunken image's end. Before performing such an operation, make sure there "
                "is no important data there.\n");
        bdrv_close(bs);
        return 1;
    }
    int ret = bdrv_truncate(bs, want);
    if (ret == 0)
        ret = bdrv_flush(bs);
    bdrv_close(bs);
    if (ret < 0) {
        fprintf(stderr, "kestrel-img: Failed to resize the image: %s\n",
                ret == -ENOTSUP ? "shrinking this format is not supported yet" : g_strerror(-ret));
        return 1;
    }
    if (!quiet)
        printf("Image resized.\n");
    return 0;
}

/* ---- snapshot ---- */

static int cmd_snapshot(int argc, char **argv)
{
    const char *fmt = NULL;
    int flags = BDRV_O_NO_BACKING, c;
    char action = 0;
    const char *snap_arg = NULL;

    while ((c = getopt(argc, argv, "f:la:c:d:Uq")) != -1) {
        switch (c) {
        case 'f': fmt = optarg; break;
        case 'l': case 'a': case 'c': case 'd':
            if (action)
                die("Cannot mix '-l', '-a', '-c', '-d'");
            action = c;
            snap_arg = optarg;
            break;
        case 'U': flags |= BDRV_O_SHARE_ALL; break;
        case 'q': quiet = true; break;
        default: return 1;
        }
    }
    if (optind != argc - 1)
        die("Expecting one image file name");
    const char *arg = action && action != 'l' ? snap_arg : NULL;
    if (arg) {
        if (flags & BDRV_O_SHARE_ALL)
            die("force-share=on can only be used with read-only images");
        BlockDriverState *bs = open_image(argv[optind], fmt, BDRV_O_RDWR | BDRV_O_NO_BACKING);
        int ret = -ENOTSUP;
        const char *what = action == 'c' ? "create" : action == 'd' ? "delete" : "apply";
        if (action == 'c' && bs->drv->snapshot_create)
            ret = bs->drv->snapshot_create(bs, arg);
        else if (action == 'd' && bs->drv->snapshot_delete)
            ret = bs->drv->snapshot_delete(bs, arg);
        else if (action == 'a' && bs->drv->snapshot_apply)
            ret = bs->drv->snapshot_apply(bs, arg);
        bdrv_close(bs);
        if (ret < 0) {
            fprintf(stderr, "kestrel-img: Could not %s snapshot '%s': %s\n", what, arg,
                    ret == -ENOENT ? "snapshot not found" : ret == -EEXIST ?
                    "a snapshot with this name already exists" : ret == -ENOTSUP ?
                    "not supported by this image format" : g_strerror(-ret));
            return 1;
        }
        return 0;
    }
    BlockDriverState *bs = open_image(argv[optind], fmt, flags);
    BlockImageInfo info = { 0 };
    if (bs->drv->get_info)
        bs->drv->get_info(bs, &info);
    print_snapshot_list(&info);
    bdrv_close(bs);
    return 0;
}

/* ---- map ---- */

typedef struct MapExtent {
    uint64_t start, length, offset;
    int depth;
    bool present, zero, data, has_offset;
    const char *file;
} MapExtent;

static bool map_mergeable(const MapExtent *a, const MapExtent *b)
{
    return a->depth == b->depth && a->present == b->present && a->zero == b->zero &&
           a->data == b->data && a->has_offset == b->has_offset &&
           (!a->has_offset || a->offset + a->length == b->offset) && a->file == b->file;
}

static void map_print(const MapExtent *e, bool json, bool first)
{
    if (json) {
        printf("%s{ \"start\": %" PRIu64 ", \"length\": %" PRIu64 ", \"depth\": %d, \"present\": %s, "
               "\"zero\": %s, \"data\": %s", first ? "[" : ",\n", e->start, e->length, e->depth,
               e->present ? "true" : "false", e->zero ? "true" : "false", e->data ? "true" : "false");
        if (e->has_offset)
            printf(", \"offset\": %" PRIu64, e->offset);
        printf("}");
    } else if (e->data && e->has_offset) {
        printf("%#-16" PRIx64 "%#-16" PRIx64 "%#-16" PRIx64 "%s\n", e->start, e->length,
               e->offset, e->file);
    }
}

static int cmd_map(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "output", required_argument, NULL, OPT_OUTPUT },
        { "force-share", no_argument, NULL, 'U' },
        { "start-offset", required_argument, NULL, 's' },
        { "max-length", required_argument, NULL, 'l' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *output = "human";
    int flags = 0, c;
    uint64_t start = 0, maxlen = UINT64_MAX;

    while ((c = getopt_long(argc, argv, "f:U", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': fmt = optarg; break;
        case 'U': flags |= BDRV_O_SHARE_ALL; break;
        case 's':
            if (!parse_size(optarg, 0, &start))
                die("Invalid start offset specified");
            break;
        case 'l':
            if (!parse_size(optarg, 0, &maxlen))
                die("Invalid length specified");
            break;
        case OPT_OUTPUT: output = optarg; break;
        default: return 1;
        }
    }
    if (optind != argc - 1)
        die("Expecting one image file name");
    bool json = !strcmp(output, "json");
    BlockDriverState *top = open_image(argv[optind], fmt, flags);
    uint64_t size = bdrv_getlength(top);
    uint64_t end = MIN(size, start + MIN(maxlen, size));
    MapExtent cur = { 0 };
    bool have = false, first = true;

    if (!json)
        printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File");
    for (uint64_t pos = start; pos < end;) {
        BlockDriverState *bs = top;
        uint64_t len = end - pos, pnum = 0, host = 0;
        MapExtent e = { .start = pos };
        for (int depth = 0;; depth++) {
            int64_t blen = bdrv_getlength(bs);
            e.depth = depth;
            e.file = bs->file ? bs->file->filename : bs->filename;
            if (pos >= (uint64_t)blen) {
                /* Beyond a shorter backing file: zeros. */
                pnum = len;
                e.zero = true;
                break;
            }
            int st = bdrv_block_status(bs, pos, MIN(len, blen - pos), &pnum, &host);
            if (st < 0) {
                fprintf(stderr, "kestrel-img: error while mapping: %s\n", g_strerror(-st));
                bdrv_close(top);
                return 1;
            }
            len = pnum;
            if ((st & BDRV_BLOCK_ALLOCATED) || !bs->backing) {
                e.present = st & BDRV_BLOCK_ALLOCATED;
                e.zero = st & BDRV_BLOCK_ZERO;
                e.data = st & BDRV_BLOCK_DATA;
                e.has_offset = st & BDRV_BLOCK_OFFSET_VALID;
                e.offset = host;
                if (!e.present)
                    e.zero = true;
                break;
            }
            bs = bs->backing;
        }
        e.length = pnum;
        if (have && map_mergeable(&cur, &e)) {
            cur.length += e.length;
        } else {
            if (have) {
                map_print(&cur, json, first);
                first = false;
            }
            cur = e;
            have = true;
        }
        pos += pnum;
    }
    if (have)
        map_print(&cur, json, first);
    if (json)
        printf("%s]\n", first && !have ? "[" : "");
    bdrv_close(top);
    return 0;
}

/* ---- compare ---- */

static int cmd_compare(int argc, char **argv)
{
    const char *fmt1 = NULL, *fmt2 = NULL;
    bool strict = false;
    int flags = 0, c;

    while ((c = getopt(argc, argv, "f:F:T:pqsU")) != -1) {
        switch (c) {
        case 'f': fmt1 = optarg; break;
        case 'F': fmt2 = optarg; break;
        case 'T': case 'p': break;
        case 'q': quiet = true; break;
        case 's': strict = true; break;
        case 'U': flags |= BDRV_O_SHARE_ALL; break;
        default: return 2;
        }
    }
    if (argc - optind != 2) {
        fprintf(stderr, "kestrel-img: Expecting two image file names\n");
        return 2;
    }
    GError *err = NULL;
    BlockDriverState *a = bdrv_open(argv[optind], fmt1, flags, &err), *b;
    if (!a) {
        fprintf(stderr, "kestrel-img: %s\n", err->message);
        return 2;
    }
    b = bdrv_open(argv[optind + 1], fmt2, flags, &err);
    if (!b) {
        fprintf(stderr, "kestrel-img: %s\n", err->message);
        bdrv_close(a);
        return 2;
    }
    uint64_t la = bdrv_getlength(a), lb = bdrv_getlength(b), common = MIN(la, lb);
    int result = 0;
    if (la != lb) {
        if (strict) {
            if (!quiet)
                printf("Strict mode: Image size mismatch!\n");
            result = 1;
            goto out;
        }
        if (!quiet)
            printf("Warning: Image size mismatch!\n");
    }
    enum { CHUNK = 1 << 20 };
    uint8_t *ba = g_malloc(CHUNK), *bb = g_malloc(CHUNK);
    for (uint64_t pos = 0; pos < MAX(la, lb) && !result; pos += CHUNK) {
        uint64_t n = MIN((uint64_t)CHUNK, MAX(la, lb) - pos);
        /* Past the shorter image its content counts as zeros. */
        memset(ba, 0, n);
        memset(bb, 0, n);
        if ((pos < la && bdrv_pread(a, pos, ba, MIN(n, la - pos)) < 0) ||
            (pos < lb && bdrv_pread(b, pos, bb, MIN(n, lb - pos)) < 0)) {
            fprintf(stderr, "kestrel-img: Error while reading offset %" PRIu64 "\n", pos);
            result = 4;
            break;
        }
        if (memcmp(ba, bb, n)) {
            uint64_t i = 0;
            while (ba[i] == bb[i])
                i++;
            if (!quiet)
                printf("Content mismatch at offset %" PRIu64 "!\n", (uint64_t)((pos + i) & ~(uint64_t)511));
            result = 1;
        }
    }
    (void)common;
    g_free(ba);
    g_free(bb);
    if (!result && !quiet)
        printf("Images are identical.\n");
out:
    bdrv_close(a);
    bdrv_close(b);
    return result;
}

/* ---- rebase and commit ---- */

static int cmd_rebase(int argc, char **argv)
{
    const char *fmt = NULL, *backing = NULL, *bfmt = NULL;
    bool unsafe = false;
    int c;

    while ((c = getopt(argc, argv, "f:b:F:ut:T:pqU")) != -1) {
        switch (c) {
        case 'f': fmt = optarg; break;
        case 'b': backing = optarg; break;
        case 'F': bfmt = optarg; break;
        case 'u': unsafe = true; break;
        case 'q': quiet = true; break;
        case 't': case 'T': case 'p': case 'U': break;
        default: return 1;
        }
    }
    if (optind != argc - 1)
        die("Expecting one image file name");
    if (!backing)
        die("Must specify backing file (-b) or use '-b \"\"' to remove it");
    const char *file = argv[optind];
    BlockDriverState *bs = open_image(file, fmt, BDRV_O_RDWR | (unsafe ? BDRV_O_NO_BACKING : 0));
    if (!bs->drv->change_backing) {
        bdrv_close(bs);
        die("Operation not supported for format '%s'", bs->drv->name);
    }
    if (*backing && !bfmt) {
        g_autofree char *path = bdrv_resolve_backing(file, backing);
        BlockDriverState *nb = bdrv_open(path, NULL, BDRV_O_NO_BACKING | BDRV_O_SHARE_ALL, NULL);
        if (nb) {
            bfmt = g_strdup(nb->drv->name);
            bdrv_close(nb);
        }
    }
    int ret = 0;
    if (!unsafe) {
        /* Copy into the overlay every unallocated range where old and new backing differ. */
        BlockDriverState *nb = NULL;
        if (*backing) {
            g_autofree char *path = bdrv_resolve_backing(file, backing);
            nb = open_image(path, bfmt, 0);
        }
        uint64_t size = bdrv_getlength(bs), cs = bs->drv->cluster_size ? bs->drv->cluster_size(bs) : 65536;
        uint8_t *bo = g_malloc(cs), *bn = g_malloc(cs);
        for (uint64_t pos = 0; pos < size && ret == 0; pos += cs) {
            uint64_t n = MIN(cs, size - pos), pnum, host;
            int st = bdrv_block_status(bs, pos, n, &pnum, &host);
            if (st < 0) {
                ret = st;
                break;
            }
            if (st & BDRV_BLOCK_ALLOCATED)
                continue;
            struct iovec one;
            BlkIov q;
            blkiov_init_buf(&q, &one, bo, n);
            ret = bdrv_read_backing(bs, pos, &q);
            memset(bn, 0, n);
            if (ret == 0 && nb) {
                int64_t nl = bdrv_getlength(nb);
                if (pos < (uint64_t)nl)
                    ret = bdrv_pread(nb, pos, bn, MIN(n, nl - pos));
            }
            if (ret == 0 && memcmp(bo, bn, n))
                ret = bdrv_pwrite(bs, pos, bo, n);
        }
        g_free(bo);
        g_free(bn);
        bdrv_close(nb);
    }
    if (ret == 0)
        ret = bs->drv->change_backing(bs, *backing ? backing : NULL, *backing ? bfmt : NULL);
    bdrv_close(bs);
    if (ret < 0) {
        fprintf(stderr, "kestrel-img: Could not change the backing file to '%s': %s\n", backing,
                g_strerror(-ret));
        return 1;
    }
    return 0;
}

/* Is [pos, pos+len) allocated in some layer from top down to, not including, base? */
static int allocated_above(BlockDriverState *top, BlockDriverState *base, uint64_t pos,
                           uint64_t len, uint64_t *pnum, int *status)
{
    for (BlockDriverState *l = top; l && l != base; l = l->backing) {
        int64_t llen = bdrv_getlength(l);
        uint64_t p, host;
        if (llen < 0)
            return (int)llen;
        if (pos >= (uint64_t)llen)
            break;      /* past this layer's end reads come from nowhere below */
        int st = bdrv_block_status(l, pos, MIN(len, (uint64_t)llen - pos), &p, &host);
        if (st < 0)
            return st;
        if (st & BDRV_BLOCK_ALLOCATED) {
            *pnum = p;
            *status = st;
            return 1;
        }
        len = MIN(len, p);
    }
    *pnum = len;
    *status = 0;
    return 0;
}

/* Does layer l (of the chain under top) match the name given to commit -b? */
static bool chain_layer_matches(BlockDriverState *parent, BlockDriverState *l, const char *name)
{
    if (parent->backing_filename && !strcmp(parent->backing_filename, name))
        return true;
    g_autofree char *a = realpath(l->filename, NULL), *b = realpath(name, NULL);
    return a && b && !strcmp(a, b);
}

/*
 * qemu-img commit: copy everything allocated above BASE (the immediate
 * backing file unless -b names one further down) into BASE.  Without -b the
 * top image is then emptied unless -d; -b implies -d, as in qemu-img, since
 * the layers in between no longer describe a consistent disk.
 */
static int cmd_commit(int argc, char **argv)
{
    const char *fmt = NULL, *base_name = NULL;
    bool keep = false, progress = false;
    int c;

    while ((c = getopt(argc, argv, "f:t:b:dpqr:")) != -1) {
        switch (c) {
        case 'f': fmt = optarg; break;
        case 'd': keep = true; break;
        case 'p': progress = true; break;
        case 'q': quiet = true; break;
        case 'b': base_name = optarg; keep = true; break;
        case 't': case 'r': break;
        default: return 1;
        }
    }
    if (optind != argc - 1)
        die("Expecting one image file name");
    const char *file = argv[optind];
    BlockDriverState *top = open_image(file, fmt, BDRV_O_RDWR | BDRV_O_NO_BACKING);
    if (!top->backing_filename) {
        bdrv_close(top);
        die("Image does not have a backing file");
    }
    /* A read-only view of the whole chain, to find BASE and read the layers above it. */
    BlockDriverState *chain = open_image(file, top->drv->name, BDRV_O_SHARE_ALL);
    BlockDriverState *bnode = chain->backing;
    if (base_name) {
        BlockDriverState *parent = chain;
        for (bnode = chain->backing; bnode; parent = bnode, bnode = bnode->backing)
            if (chain_layer_matches(parent, bnode, base_name))
                break;
        if (!bnode) {
            bdrv_close(chain);
            bdrv_close(top);
            die("Did not find '%s' in the backing chain of '%s'", base_name, file);
        }
    }
    if (!bnode) {
        bdrv_close(chain);
        bdrv_close(top);
        die("Could not open the backing file of '%s'", file);
    }
    /* With its own backing chain: a write smaller than its cluster copies the rest from there. */
    BlockDriverState *base = open_image(bnode->filename, bnode->drv->name, BDRV_O_RDWR);
    uint64_t size = bdrv_getlength(top), blen = bdrv_getlength(base);
    int ret = 0;
    if (size > blen) {
        ret = bdrv_truncate(base, size);
        if (ret < 0) {
            fprintf(stderr, "kestrel-img: Could not grow the backing file: %s\n", g_strerror(-ret));
            goto out;
        }
    }
    uint8_t *buf = g_malloc(1 << 20);
    for (uint64_t pos = 0; pos < size && ret == 0;) {
        uint64_t pnum = 0;
        int st = 0;
        ret = allocated_above(chain, bnode, pos, MIN(size - pos, 1u << 20), &pnum, &st);
        if (ret < 0)
            break;
        if (ret) {
            if ((st & BDRV_BLOCK_ZERO) && !(st & BDRV_BLOCK_DATA)) {
                ret = bdrv_pwrite_zeroes(base, pos, pnum, 0);
            } else {
                ret = bdrv_pread(chain, pos, buf, pnum);
                if (ret == 0)
                    ret = bdrv_pwrite(base, pos, buf, pnum);
            }
        }
        pos += pnum;
        if (progress && !quiet)
            printf("    (%0.2f/100%%)\r", pos * 100.0 / size);
    }
    g_free(buf);
    if (ret == 0)
        ret = bdrv_flush(base);
    if (ret == 0 && !keep && top->drv->make_empty)
        ret = top->drv->make_empty(top);
out:
    bdrv_close(base);
    bdrv_close(chain);
    bdrv_close(top);
    if (ret < 0) {
        fprintf(stderr, "kestrel-img: Commit failed: %s\n", g_strerror(-ret));
        return 1;
    }
    if (!quiet)
        printf("Image committed.\n");
    return 0;
}

/* ---- amend ---- */

/* qemu-img amend -o: compat, lazy_refcounts, refcount_bits. */
static int cmd_amend(int argc, char **argv)
{
    const char *fmt = NULL;
    GString *optstr = g_string_new(NULL);
    int c;

    while ((c = getopt(argc, argv, "f:o:t:pqU")) != -1) {
        switch (c) {
        case 'f': fmt = optarg; break;
        case 'o':
            g_string_append_printf(optstr, "%s%s", optstr->len ? "," : "", optarg);
            break;
        case 'q': quiet = true; break;
        case 't': case 'p': case 'U': break;
        default: return 1;
        }
    }
    if (!optstr->len)
        die("Must specify options (-o)");
    if (optind != argc - 1)
        die("Expecting one image file name");
    GError *err = NULL;
    KOpts *o = kopts_parse(optstr->str, NULL, &err);
    if (!o)
        die_gerror(err);
    int version = 0, lazy = -1;
    uint64_t rbits = 0, new_size = 0;
    bool have_size = false;
    for (size_t i = 0; i < kopts_count(o); i++) {
        const char *k = kopts_key(o, i), *v = kopts_value(o, i);
        bool b;
        if (!strcmp(k, "compat")) {
            if (!strcmp(v, "0.10") || !strcmp(v, "v2"))
                version = 2;
            else if (!strcmp(v, "1.1") || !strcmp(v, "v3"))
                version = 3;
            else
                die("Unknown compatibility level %s", v);
        } else if (!strcmp(k, "lazy_refcounts")) {
            if (!parse_bool(v, &b))
                die("Invalid lazy_refcounts '%s'", v);
            lazy = b;
        } else if (!strcmp(k, "refcount_bits")) {
            if (!parse_uint(v, &rbits) || !rbits || rbits > 64 || (rbits & (rbits - 1)))
                die("Refcount width must be a power of two and may not exceed 64 bits");
        } else if (!strcmp(k, "backing_file") || !strcmp(k, "backing_fmt")) {
            die("Cannot amend the backing file\nYou can use 'qemu-img rebase' instead.");
        } else if (!strcmp(k, "cluster_size") || !strcmp(k, "preallocation") ||
                   !strcmp(k, "compression_type") || !strcmp(k, "extended_l2") ||
                   !strcmp(k, "encryption") || !strcmp(k, "encrypt.format")) {
            die("Invalid parameter '%s'\nThis option is only supported for image creation", k);
        } else if (!strcmp(k, "size")) {
            if (!parse_size(v, 0, &new_size))
                die("Invalid size '%s'", v);
            if (new_size % 512)
                die("The new size must be a multiple of 512");
            have_size = true;
        } else {
            die("Invalid parameter '%s'", k);
        }
        kopts_mark_used(o, i);
    }
    kopts_free(o);
    g_string_free(optstr, TRUE);

    BlockDriverState *bs = open_image(argv[optind], fmt, BDRV_O_RDWR | BDRV_O_NO_BACKING);
    if (strcmp(bs->drv->name, "qcow2")) {
        const char *name = bs->drv->name;
        bdrv_close(bs);
        die("Format driver '%s' does not support option amendment", name);
    }
    BlockImageInfo info = { 0 };
    bs->drv->get_info(bs, &info);
    int new_version = version ? version : info.version;
    if (rbits && new_version == 2 && rbits != 16) {
        bdrv_close(bs);
        die("Refcount widths other than 16 bits require compatibility level 1.1 or above "
            "(use compat=1.1 or greater)");
    }
    /* Downgrading must turn zero clusters into real zeros, which reads the backing file. */
    if (new_version == 2 && info.version == 3 && bs->backing_filename) {
        bdrv_close(bs);
        bs = open_image(argv[optind], fmt, BDRV_O_RDWR);
    }
    const char *why;
    int ret = qcow2_amend(bs, version, lazy, (int)rbits, &why);
    if (ret == 0 && have_size && new_size != (uint64_t)bdrv_getlength(bs)) {
        if (new_size < (uint64_t)bdrv_getlength(bs))
            why = "Shrinking a qcow2 image is not supported yet";
        else
            ret = bdrv_truncate(bs, new_size);
        if (why)
            ret = -ENOTSUP;
    }
    if (ret == 0)
        ret = bdrv_flush(bs);
    bdrv_close(bs);
    if (ret < 0) {
        if (why)
            die("%s", why);
        die("Error while amending options: %s", g_strerror(-ret));
    }
    return 0;
}

/* ---- measure ---- */

static uint64_t round_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) / a * a;
}

/*
 * Refcount blocks plus refcount table clusters needed to count 'clusters'
 * clusters and themselves: the smallest fixed point, found by iterating
 * from zero (each block counts cs*8/bits clusters, each table cluster
 * points at cs/8 blocks).
 */
static uint64_t measure_refcount_clusters(uint64_t clusters, uint64_t cs, int bits)
{
    uint64_t per_block = cs * 8 / bits, per_table = cs / 8, blocks = 0, table = 0;

    for (;;) {
        uint64_t nb = (clusters + blocks + table + per_block - 1) / per_block;
        uint64_t nt = (nb + per_table - 1) / per_table;
        if (nb == blocks && nt == table)
            return blocks + table;
        blocks = nb;
        table = nt;
    }
}

/*
 * A fully allocated qcow2 image of vsize bytes, as qemu-img measure counts
 * it: header cluster, L2 tables for every cluster (whole tables), an L1
 * table of whole clusters, the refcount structure covering all of it.
 */
static uint64_t measure_qcow2_full(uint64_t vsize, uint64_t cs, int refcount_bits)
{
    uint64_t aligned = round_up(vsize, cs), meta = cs;
    uint64_t l2e = round_up(aligned / cs, cs / 8);
    uint64_t l1e = round_up(l2e * 8 / cs, cs / 8);

    meta += l2e * 8 + l1e * 8;
    meta += measure_refcount_clusters((meta + aligned) / cs, cs, refcount_bits) * cs;
    return meta + aligned;
}

enum { OPT_SIZE = 310 };

static int cmd_measure(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "output", required_argument, NULL, OPT_OUTPUT },
        { "size", required_argument, NULL, OPT_SIZE },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *in_fmt = NULL, *out_fmt = "raw", *optstr = NULL, *output = "human";
    uint64_t size = 0;
    bool have_size = false;
    int flags = 0, c;

    while ((c = getopt_long(argc, argv, "f:O:o:l:U", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': in_fmt = optarg; break;
        case 'O': out_fmt = optarg; break;
        case 'o': optstr = optarg; break;
        case 'l': die("measure -l (internal snapshots) is not supported");
        case 'U': flags |= BDRV_O_SHARE_ALL; break;
        case OPT_OUTPUT: output = optarg; break;
        case OPT_SIZE:
            if (!parse_size(optarg, 0, &size))
                die("Invalid image size specified. You may use k, M, G, T, P or E suffixes for "
                    "kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
            have_size = true;
            break;
        default: return 1;
        }
    }
    bool json = !strcmp(output, "json");
    if (!json && strcmp(output, "human"))
        die("--output must be used with human or json as argument.");
    if (argc - optind > 1)
        die("Expecting at most one image file name");
    const char *filename = optind < argc ? argv[optind] : NULL;
    if (filename && have_size)
        die("--size N cannot be used together with a filename.");
    if (!filename && !have_size)
        die("Either --size N or one filename must be specified.");
    bool qcow2 = !strcmp(out_fmt, "qcow2");
    if (!qcow2 && strcmp(out_fmt, "raw"))
        die("Unknown file format '%s'", out_fmt);
    CreateParams p = { .fmt = out_fmt };
    if (optstr)
        parse_create_opts(&p, optstr);
    uint64_t cs = p.q.cluster_size ? p.q.cluster_size : 65536;
    int rbits = p.q.refcount_bits ? p.q.refcount_bits : 16;
    if (qcow2 && (cs < 512 || (cs & (cs - 1))))
        die("Cluster size must be a power of two between 512 and 2048k");
    if (qcow2 && (rbits & (rbits - 1)))
        die("Refcount width must be a power of two and may not exceed 64 bits");
    bool prealloc_all = p.prealloc && (!strcmp(p.prealloc, "full") || !strcmp(p.prealloc, "falloc"));

    BlockDriverState *in = filename ? open_image(filename, in_fmt, flags) : NULL;
    uint64_t required, full;
    bool bitmaps = false;
    if (!qcow2) {
        /* A raw file's size is its length; holes do not make it smaller. */
        required = full = in ? (uint64_t)bdrv_getlength(in) : round_up(size, 512);
    } else {
        uint64_t vsize = in ? (uint64_t)bdrv_getlength(in) : size, data = 0;
        uint64_t aligned = round_up(vsize, cs);
        if (prealloc_all) {
            data = aligned;
        } else if (in) {
            /* Clusters holding data anywhere in the chain; zeros need none. */
            for (uint64_t pos = 0; pos < vsize;) {
                uint64_t pnum = 0;
                int st = 0;
                int r = allocated_above(in, NULL, pos, vsize - pos, &pnum, &st);
                if (r < 0)
                    die("Could not read the block status of '%s': %s", filename, g_strerror(-r));
                if (pnum == 0)
                    break;
                if (r && (st & BDRV_BLOCK_DATA) && !(st & BDRV_BLOCK_ZERO)) {
                    /*
                     * Every cluster the range touches.  Only data ranges are
                     * extended to a cluster end, so a cluster where one
                     * starts mid-way was not counted before.
                     */
                    uint64_t end = round_up(pos + pnum, cs);
                    data += end - pos / cs * cs;
                    pnum = end - pos;
                }
                pos += pnum;
            }
        }
        full = measure_qcow2_full(vsize, cs, rbits);
        required = full - aligned + data;
        /* Persistent bitmaps need a v3 target and a source that can carry them. */
        bitmaps = in && p.q.version != 2 && !strcmp(in->drv->name, "qcow2");
    }
    bdrv_close(in);
    if (json) {
        printf("{\n");
        if (bitmaps)
            printf("    \"bitmaps\": 0,\n");
        printf("    \"required\": %" PRIu64 ",\n    \"fully-allocated\": %" PRIu64 "\n}\n",
               required, full);
    } else {
        printf("required size: %" PRIu64 "\nfully allocated size: %" PRIu64 "\n", required, full);
        if (bitmaps)
            printf("bitmaps size: 0\n");
    }
    return 0;
}

/* ---- bench ---- */

typedef struct BenchState BenchState;
typedef struct BenchSlot {
    BenchState *b;
    struct iovec iov;
} BenchSlot;

struct BenchState {
    BlockBackend *blk;
    bool write;
    uint64_t count, submitted, completed;
    uint64_t offset, start, step, size, image_size;
    uint64_t flush_interval, since_flush;
    int ret;
};

static void bench_submit(BenchSlot *slot);

static void bench_done(void *opaque, int ret)
{
    BenchSlot *slot = opaque;
    BenchState *b = slot->b;

    b->completed++;
    if (ret < 0 && b->ret == 0)
        b->ret = ret;
    if (b->submitted < b->count && b->ret == 0)
        bench_submit(slot);
}

static void bench_flush_done(void *opaque, int ret)
{
    BenchState *b = opaque;
    if (ret < 0 && b->ret == 0)
        b->ret = ret;
}

static void bench_submit(BenchSlot *slot)
{
    BenchState *b = slot->b;

    if (b->offset + b->size > b->image_size)
        b->offset = b->start;
    if (b->write)
        blk_aio_pwritev(b->blk, b->offset, &slot->iov, 1, bench_done, slot);
    else
        blk_aio_preadv(b->blk, b->offset, &slot->iov, 1, bench_done, slot);
    b->submitted++;
    b->offset += b->step;
    if (b->write && b->flush_interval && ++b->since_flush >= b->flush_interval) {
        b->since_flush = 0;
        blk_aio_flush(b->blk, bench_flush_done, b);
    }
}

static bool parse_cache_mode(const char *s, BlockCacheMode *out)
{
    static const char *const names[] = { "writeback", "none", "writethrough", "directsync", "unsafe" };
    for (size_t i = 0; i < ARRAY_LEN(names); i++)
        if (!strcmp(s, names[i])) {
            *out = i;
            return true;
        }
    return false;
}

static int cmd_bench(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "flush-interval", required_argument, NULL, 'F' },
        { "pattern", required_argument, NULL, 'P' },
        { "no-drain", no_argument, NULL, 'N' },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    BlockOptions o;
    BenchState b = { .count = 75000, .size = 4096 };
    uint64_t depth = 64, v;
    bool step_given = false;
    int pattern = 0, c;

    blk_options_init(&o);
    o.aio = BLK_AIO_THREADS;
    while ((c = getopt_long(argc, argv, "c:d:f:i:no:qs:S:t:wU", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            if (!parse_uint(optarg, &b.count) || !b.count)
                die("Invalid request count specified");
            break;
        case 'd':
            if (!parse_uint(optarg, &depth) || !depth || depth > 4096)
                die("Invalid queue depth specified");
            break;
        case 'f': o.format = optarg; break;
        case 'i':
            if (!strcmp(optarg, "threads"))
                o.aio = BLK_AIO_THREADS;
            else if (!strcmp(optarg, "io_uring"))
                o.aio = BLK_AIO_IO_URING;
            else
                die("Invalid aio option: %s", optarg);
            break;
        case 'n': o.cache = BLK_CACHE_NONE; break;
        case 'o':
            if (!parse_size(optarg, 0, &b.offset))
                die("Invalid offset specified");
            break;
        case 'q': quiet = true; break;
        case 's':
            if (!parse_size(optarg, 0, &b.size) || !b.size || b.size > (64u << 20))
                die("Invalid buffer size specified");
            break;
        case 'S':
            if (!parse_size(optarg, 0, &b.step))
                die("Invalid step size specified");
            step_given = true;
            break;
        case 't':
            if (!parse_cache_mode(optarg, &o.cache))
                die("Invalid cache mode");
            break;
        case 'w': b.write = true; break;
        case 'U': o.force_share = true; break;
        case 'F':
            if (!parse_uint(optarg, &b.flush_interval))
                die("Invalid flush interval specified");
            break;
        case 'P':
            if (!parse_uint(optarg, &v) || v > 255)
                die("Invalid pattern byte specified");
            pattern = v;
            break;
        case 'N': break;
        default: return 1;
        }
    }
    if (optind != argc - 1)
        die("Expecting one image file name");
    if (!step_given)
        b.step = b.size;
    o.read_only = !b.write;
    GError *err = NULL;
    b.blk = blk_open(argv[optind], &o, &err);
    if (!b.blk)
        die_gerror(err);
    b.image_size = blk_getlength(b.blk);
    b.start = b.offset;
    if (b.offset + b.size > b.image_size)
        die("Request exceeds the image size");
    if (!quiet)
        printf("Sending %" PRIu64 " %s requests, %" PRIu64 " bytes each, %" PRIu64 " in parallel "
               "(starting at offset %" PRIu64 ", step size %" PRIu64 ")\n", b.count,
               b.write ? "write" : "read", b.size, depth, b.offset, b.step);
    depth = MIN(depth, b.count);
    BenchSlot *slots = g_new0(BenchSlot, depth);
    gint64 t0 = g_get_monotonic_time();
    for (uint64_t i = 0; i < depth; i++) {
        void *buf;
        if (posix_memalign(&buf, 4096, b.size))
            die("out of memory");
        memset(buf, pattern, b.size);
        slots[i].b = &b;
        slots[i].iov = (struct iovec){ buf, b.size };
        bench_submit(&slots[i]);
    }
    while (b.completed < b.submitted || blk_in_flight(b.blk))
        g_main_context_iteration(g_main_context_default(), TRUE);
    if (b.write && b.ret == 0)
        b.ret = blk_flush(b.blk);
    gint64 t1 = g_get_monotonic_time();
    if (!quiet)
        printf("Run completed in %.3f seconds.\n", (t1 - t0) / 1e6);
    for (uint64_t i = 0; i < depth; i++)
        free(slots[i].iov.iov_base);
    g_free(slots);
    blk_close(b.blk);
    if (b.ret < 0) {
        fprintf(stderr, "kestrel-img: Failed request: %s\n", g_strerror(-b.ret));
        return 1;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: kestrel-img [create|info|check|convert] [options] ...\n"
               "  create [-q] [-f fmt] [-b backing_file -F backing_fmt] [-o options] filename [size]\n"
               "  info [-f fmt] [--output=human|json] [--backing-chain] [-U] filename\n"
               "  check [-q] [-f fmt] [--output=human|json] [-r leaks|all] [-U] filename\n"
               "  convert [-c] [-p] [-q] [-n] [--target-is-zero] [-f fmt] [-O output_fmt]\n"
               "          [-B backing_file -F backing_fmt] [-o options] [-S sparse_size]\n"
               "          [-U] filename [filename2 [...]] output_filename\n"
               "  resize [-q] [-f fmt] [--shrink] filename [+|-]size\n"
               "  snapshot [-l | -a snapshot | -c snapshot | -d snapshot] [-U] filename\n"
               "  map [-f fmt] [--output=human|json] [--start-offset=N] [--max-length=N] filename\n"
               "  compare [-f fmt] [-F fmt] [-q] [-s] [-U] filename1 filename2\n"
               "  rebase [-f fmt] [-u] -b backing_file [-F backing_fmt] filename\n"
               "  commit [-q] [-p] [-d] [-f fmt] [-b base] filename\n"
               "  amend [-q] [-f fmt] -o compat=0.10|1.1,lazy_refcounts=on|off,refcount_bits=N\n"
               "        filename\n"
               "  measure [--output=human|json] [-O fmt] [-o options] [-f fmt] [-U]\n"
               "          [--size N | filename]\n"
               "  bench [-c count] [-d depth] [-f fmt] [--flush-interval=N] [-i aio] [-n]\n"
               "        [-o offset] [--pattern=P] [-q] [-s size] [-S step] [-t cache] [-w] [-U] filename\n"
               "Formats: raw qcow2\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    const char *cmd = argv[1];
    argc--;
    argv++;
    if (!strcmp(cmd, "create"))
        return cmd_create(argc, argv);
    if (!strcmp(cmd, "info"))
        return cmd_info(argc, argv);
    if (!strcmp(cmd, "check"))
        return cmd_check(argc, argv);
    if (!strcmp(cmd, "convert"))
        return cmd_convert(argc, argv);
    if (!strcmp(cmd, "resize"))
        return cmd_resize(argc, argv);
    if (!strcmp(cmd, "snapshot"))
        return cmd_snapshot(argc, argv);
    if (!strcmp(cmd, "map"))
        return cmd_map(argc, argv);
    if (!strcmp(cmd, "compare"))
        return cmd_compare(argc, argv);
    if (!strcmp(cmd, "rebase"))
        return cmd_rebase(argc, argv);
    if (!strcmp(cmd, "commit"))
        return cmd_commit(argc, argv);
    if (!strcmp(cmd, "bench"))
        return cmd_bench(argc, argv);
    if (!strcmp(cmd, "measure"))
        return cmd_measure(argc, argv);
    if (!strcmp(cmd, "amend"))
        return cmd_amend(argc, argv);
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
        printf("kestrel-img version 0.1\n");
        return 0;
    }
    fprintf(stderr, "kestrel-img: Command not found: %s\n", cmd);
    return 1;
}
