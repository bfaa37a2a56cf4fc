/*
 * CPU models, CPUID feature names and the CPUID table builder.
 *
 * The generic half (feature words, names, models, "-cpu MODEL,+feat,-feat"
 * parsing) is declared in include/kestrel/cpu-model.h for every engine and the
 * command line.  The KVM half turns KVM_GET_SUPPORTED_CPUID's answer into
 * the per-vCPU table given to KVM_SET_CPUID2.  Everything here is pure: no
 * ioctls, no globals written, so tests/unit/test-kvm-cpuid.c can feed fake
 * tables.
 *
 * Sources: Intel SDM vol. 2A "CPUID" (leaf/bit layout), AMD APM vol. 3
 * appendix E (extended leaves), Linux arch/x86/include/uapi/asm/kvm_para.h
 * (leaves 0x40000000/1), /work/shared/docs/kvm-api.md §1.7.
 */
#ifndef KESTREL_KVM_CPUID_H
#define KESTREL_KVM_CPUID_H

#include "kestrel/common.h"
#include "kestrel/cpu-model.h"
#include <linux/kvm.h>

/* ---- KVM CPUID table builder ---- */

typedef struct KvmCpuidConfig {
    uint32_t apic_id;            /* this vCPU's initial APIC ID (= vCPU id) */
    unsigned nr_cpus;            /* CPUs in the one package we model */
    bool tsc_deadline;           /* KVM_CAP_TSC_DEADLINE_TIMER and in-kernel LAPIC */
    /*
     * kernel-irqchip=off: the LAPIC is Kestrel's (hw/pc/apic.c), so no
     * x2APIC (include/kestrel/irqchip.h) and none of KVM's paravirt
     * features that need KVM's own LAPIC (PV EOI, PV unhalt, PV IPI,
     * async-PF-as-interrupt, PV sched-yield).
     */
    bool userspace_apic;
} KvmCpuidConfig;

/* Allocate a kvm_cpuid2 with room for nent entries (g_free to release). */
struct kvm_cpuid2 *kvm_cpuid_alloc(unsigned nent);
/* The entry for (function, index); index ignored where not significant. */
struct kvm_cpuid_entry2 *kvm_cpuid_find(const struct kvm_cpuid2 *c,
                                        uint32_t function, uint32_t index);

/*
 * Build the table for one vCPU: the model's features (or everything, for
 * "host"/"max") intersected with what KVM supports, plus topology, APIC ID,
 * the hypervisor bit and the KVM signature leaves.  Features explicitly
 * asked for with +feat that KVM cannot provide are reported in
 * 'missing_explicit' when it is non-NULL (model features KVM lacks are
 * dropped silently: a baseline model must still start on an older host).
 * Returns a g_malloc'ed table.
 */
struct kvm_cpuid2 *kvm_cpuid_build(const struct kvm_cpuid2 *supported,
                                   const X86CPUSpec *spec,
                                   const KvmCpuidConfig *cfg,
                                   X86FeatureSet missing_explicit);

#endif
