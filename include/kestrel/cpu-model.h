/*
 * CPU models and CPUID feature names, shared by every CPU engine and the
 * command line: feature words, names, models, and "-cpu MODEL,+feat,-feat"
 * parsing.  Pure data and functions; nothing here knows about KVM or the
 * software CPU.  Implemented in accel/kvm/kvm-cpuid.c (for now).
 *
 * Sources: Intel SDM vol. 2A "CPUID" (leaf/bit layout), AMD APM vol. 3
 * appendix E (extended leaves), Linux arch/x86/include/uapi/asm/kvm_para.h.
 */
#ifndef KESTREL_CPU_MODEL_H
#define KESTREL_CPU_MODEL_H

#include "kestrel/common.h"

/* The CPUID registers that carry feature bits we let users name. */
typedef enum {
    FEAT_1_EDX,          /* CPUID.01H:EDX */
    FEAT_1_ECX,          /* CPUID.01H:ECX */
    FEAT_7_0_EBX,        /* CPUID.(EAX=07H,ECX=0):EBX */
    FEAT_7_0_ECX,        /* CPUID.(EAX=07H,ECX=0):ECX */
    FEAT_7_0_EDX,        /* CPUID.(EAX=07H,ECX=0):EDX */
    FEAT_7_1_EAX,        /* CPUID.(EAX=07H,ECX=1):EAX */
    FEAT_D_1_EAX,        /* CPUID.(EAX=0DH,ECX=1):EAX */
    FEAT_8000_0001_EDX,  /* CPUID.80000001H:EDX */
    FEAT_8000_0001_ECX,  /* CPUID.80000001H:ECX */
    FEAT_8000_0007_EDX,  /* CPUID.80000007H:EDX */
    FEAT_KVM,            /* CPUID.40000001H:EAX (KVM paravirt features) */
    FEAT__COUNT
} X86FeatureWord;

enum { CPUID_EAX, CPUID_EBX, CPUID_ECX, CPUID_EDX };

typedef struct X86FeatureWordInfo {
    uint32_t function, index;
    int reg;                     /* CPUID_EAX.. */
    const char *desc;            /* "CPUID.01H:ECX" for messages */
} X86FeatureWordInfo;

extern const X86FeatureWordInfo x86_feature_words[FEAT__COUNT];

typedef uint32_t X86FeatureSet[FEAT__COUNT];

typedef struct X86FeatureName {
    const char *name;            /* /proc/cpuinfo / QEMU spelling */
    X86FeatureWord word;
    uint32_t mask;               /* usually one bit; "kvmclock" is two */
} X86FeatureName;

/* Bits that matter by name elsewhere in the builder. */
#define CPUID_1_EDX_VME         (1u << 1)
#define CPUID_1_EDX_MCE         (1u << 7)
#define CPUID_1_EDX_APIC        (1u << 9)
#define CPUID_1_EDX_MTRR        (1u << 12)
#define CPUID_1_EDX_MCA         (1u << 14)
#define CPUID_1_EDX_HTT         (1u << 28)
#define CPUID_1_ECX_X2APIC      (1u << 21)
#define CPUID_1_ECX_TSC_DEADLINE (1u << 24)
#define CPUID_1_ECX_XSAVE       (1u << 26)
#define CPUID_1_ECX_OSXSAVE     (1u << 27)
#define CPUID_1_ECX_AVX         (1u << 28)
#define CPUID_1_ECX_HYPERVISOR  (1u << 31)
#define CPUID_7_0_EBX_AVX512F   (1u << 16)
#define CPUID_7_0_ECX_PKU       (1u << 3)
#define CPUID_7_0_ECX_OSPKE     (1u << 4)
#define CPUID_7_0_EDX_AMX_TILE  (1u << 24)

/*
 * Look a feature up by name.  Case, '_', '-' and '.' are not significant
 * ("sse4.1" == "SSE4_1" == "sse4-1"); aliases such as "pni" work.
 */
const X86FeatureName *x86_feature_lookup(const char *name);
/* Canonical name of one bit, or NULL. */
const char *x86_feature_bit_name(X86FeatureWord w, unsigned bit);
/* "avx, sse4.2" for the bits in set (unnamed bits as CPUID.xxH:REG[n]). */
char *x86_feature_set_describe(const X86FeatureSet set);

typedef struct X86CPUModel {
    const char *name;
    const char *desc;
    bool host;                   /* everything the engine supports */
    uint32_t level, xlevel;      /* max basic / extended leaf (host: engine's) */
    uint32_t family, model, stepping;
    const char *model_id;        /* brand string, leaves 0x80000002-4 */
    X86FeatureSet features;
} X86CPUModel;

#define X86_CPU_DEFAULT_MODEL "kestrel64"

const X86CPUModel *x86_cpu_model_find(const char *name);
/* One line per model, for -cpu help. */
void x86_cpu_model_list(FILE *out);
/* CPUID.01H:EAX for a model's family/model/stepping (SDM vol. 2A, Figure 3-6). */
uint32_t x86_cpu_model_signature(const X86CPUModel *m);

/* A parsed -cpu option. */
typedef struct X86CPUSpec {
    const X86CPUModel *model;
    X86FeatureSet plus, minus;   /* +feat / -feat (the last one given wins) */
} X86CPUSpec;

/* "MODEL[,+feat|-feat|feat=on|off]..."; NULL or "" means the default model. */
bool x86_cpu_spec_parse(const char *str, X86CPUSpec *spec, GError **errp);

#endif
