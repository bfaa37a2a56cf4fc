/*
 * QEMU's named CPU models in the shared model table (accel/kvm/kvm-cpuid.c):
 * each has QEMU's CPUID signature (family/model/stepping, SDM vol. 2A
 * Figure 3-6), brand string, maximum leaves and feature words as
 * target/i386/cpu.c defines them (version 1), "-v1" names the same model,
 * and "-cpu MODEL,+feat,-feat" parses on top of them.
 */
#include "kestrel/cpu-model.h"
#include "tests/testlib.h"

#include <inttypes.h>
#include <string.h>

#define BIT(n) (1u << (n))

/* fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 */
#define EDX_CORE2 0x078bfbffu
/* QEMU's PPRO_FEATURES: the above less vme mtrr mca pse36 clflush */
#define EDX_PPRO  0x0781abfdu

static const struct {
    const char *name;
    uint32_t signature, level, xlevel;
    const char *brand;
    uint32_t edx1, ecx1;                /* CPUID.01H, without the hypervisor bit */
    uint32_t ext_edx, ext_ecx, ebx7;
} qemu_models[] = {
    { "qemu32", 0x00000663, 4, 0x80000004, "QEMU Virtual CPU version 2.5+",
      EDX_PPRO, BIT(0), 0, 0, 0 },
    { "kvm64", 0x00000f61, 0xd, 0x80000008, "Common KVM processor",
      EDX_CORE2, BIT(0) | BIT(13), BIT(11) | BIT(20) | BIT(29), 0, 0 },
    { "kvm32", 0x00000f61, 5, 0x80000008, "Common 32-bit KVM processor",
      EDX_CORE2, BIT(0), 0, 0, 0 },
    { "core2duo", 0x000006fb, 10, 0x80000008,
      "Intel(R) Core(TM)2 Duo CPU     T7700  @ 2.40GHz",
      EDX_CORE2 | BIT(22) | BIT(27), BIT(0) | BIT(3) | BIT(9) | BIT(13),
      BIT(11) | BIT(20) | BIT(29), BIT(0), 0 },
    { "Conroe", 0x000006f3, 10, 0x80000008, "Intel Celeron_4x0 (Conroe/Merom Class Core 2)",
      EDX_CORE2, BIT(0) | BIT(9), BIT(11) | BIT(20) | BIT(29), BIT(0), 0 },
    { "Penryn", 0x00010673, 10, 0x80000008, "Intel Core 2 Duo P9xxx (Penryn Class Core 2)",
      EDX_CORE2, BIT(0) | BIT(9) | BIT(13) | BIT(19), BIT(11) | BIT(20) | BIT(29), BIT(0), 0 },
    { "Nehalem", 0x000106a3, 11, 0x80000008, "Intel Core i7 9xx (Nehalem Class Core i7)",
      EDX_CORE2, BIT(0) | BIT(9) | BIT(13) | BIT(19) | BIT(20) | BIT(23),
      BIT(11) | BIT(20) | BIT(29), BIT(0), 0 },
    { "Westmere", 0x000206c1, 11, 0x80000008, "Westmere E56xx/L56xx/X56xx (Nehalem-C)",
      EDX_CORE2, BIT(0) | BIT(1) | BIT(9) | BIT(13) | BIT(19) | BIT(20) | BIT(23) | BIT(25),
      BIT(11) | BIT(20) | BIT(29), BIT(0), 0 },
    { "SandyBridge", 0x000206a1, 0xd, 0x80000008, "Intel Xeon E312xx (Sandy Bridge)",
      EDX_CORE2, BIT(0) | BIT(1) | BIT(9) | BIT(13) | BIT(19) | BIT(20) | BIT(21) | BIT(23) |
                 BIT(24) | BIT(25) | BIT(26) | BIT(28),
      BIT(11) | BIT(20) | BIT(27) | BIT(29), BIT(0), 0 },
    { "Haswell", 0x000306c4, 0xd, 0x80000008, "Intel Core Processor (Haswell)",
      EDX_CORE2, BIT(0) | BIT(1) | BIT(9) | BIT(12) | BIT(13) | BIT(17) | BIT(19) | BIT(20) |
                 BIT(21) | BIT(22) | BIT(23) | BIT(24) | BIT(25) | BIT(26) | BIT(28) |
                 BIT(29) | BIT(30),
      BIT(11) | BIT(20) | BIT(27) | BIT(29), BIT(0) | BIT(5),
      BIT(0) | BIT(3) | BIT(4) | BIT(5) | BIT(7) | BIT(8) | BIT(9) | BIT(10) | BIT(11) },
};

static void test_named_models_match_qemus_definitions(void)
{
    char what[128];
    for (size_t i = 0; i < sizeof(qemu_models) / sizeof(qemu_models[0]); i++) {
        const char *n = qemu_models[i].name;
        const X86CPUModel *m = x86_cpu_model_find(n);
        CHECK_MSG(m != NULL, "model %s not found", n);
        CHECK_MSG(!m->host, "%s is a host model", n);
        snprintf(what, sizeof(what), "%s CPUID.01H:EAX", n);
        CHECK_EQ(what, qemu_models[i].signature, x86_cpu_model_signature(m));
        snprintf(what, sizeof(what), "%s max basic leaf", n);
        CHECK_EQ(what, qemu_models[i].level, m->level);
        snprintf(what, sizeof(what), "%s max extended leaf", n);
        CHECK_EQ(what, qemu_models[i].xlevel, m->xlevel);
        snprintf(what, sizeof(what), "%s brand", n);
        CHECK_STREQ(what, qemu_models[i].brand, m->model_id);
        CHECK_MSG(strlen(m->model_id) < 48, "%s brand longer than 47 bytes", n);
        snprintf(what, sizeof(what), "%s CPUID.01H:EDX", n);
        CHECK_EQ(what, qemu_models[i].edx1, m->features[FEAT_1_EDX]);
        snprintf(what, sizeof(what), "%s CPUID.01H:ECX (less hypervisor)", n);
        CHECK_EQ(what, qemu_models[i].ecx1, m->features[FEAT_1_ECX] & ~CPUID_1_ECX_HYPERVISOR);
        snprintf(what, sizeof(what), "%s CPUID.80000001H:EDX", n);
        CHECK_EQ(what, qemu_models[i].ext_edx, m->features[FEAT_8000_0001_EDX]);
        snprintf(what, sizeof(what), "%s CPUID.80000001H:ECX", n);
        CHECK_EQ(what, qemu_models[i].ext_ecx, m->features[FEAT_8000_0001_ECX]);
        snprintf(what, sizeof(what), "%s CPUID.07H.0:EBX", n);
        CHECK_EQ(what, qemu_models[i].ebx7, m->features[FEAT_7_0_EBX]);
    }
}

static void test_sandybridge_and_haswell_have_xsaveopt(void)
{
    CHECK_EQ("SandyBridge CPUID.0DH.1:EAX", BIT(0),
             x86_cpu_model_find("SandyBridge")->features[FEAT_D_1_EAX]);
    CHECK_EQ("Haswell CPUID.0DH.1:EAX", BIT(0),
             x86_cpu_model_find("Haswell")->features[FEAT_D_1_EAX]);
    CHECK_EQ("Nehalem CPUID.0DH.1:EAX", 0, x86_cpu_model_find("Nehalem")->features[FEAT_D_1_EAX]);
}

static void test_v1_name_is_the_same_model(void)
{
    CHECK(x86_cpu_model_find("Nehalem-v1") == x86_cpu_model_find("Nehalem"));
    CHECK(x86_cpu_model_find("haswell-V1") == x86_cpu_model_find("Haswell"));
    CHECK(x86_cpu_model_find("Nehalem-v2") == NULL);
    CHECK(x86_cpu_model_find("host-v1") == NULL);
    CHECK(x86_cpu_model_find("-v1") == NULL);
}

static void test_parse_named_model_with_features(void)
{
    X86CPUSpec spec;
    GError *err = NULL;
    CHECK_MSG(x86_cpu_spec_parse("Haswell,-avx2,+x2apic,rdrand=off", &spec, &err),
              "Haswell,-avx2,+x2apic,rdrand=off refused: %s", err ? err->message : "");
    CHECK_STREQ("model", "Haswell", spec.model->name);
    CHECK_EQ("minus CPUID.07H.0:EBX", BIT(5), spec.minus[FEAT_7_0_EBX]);
    CHECK_EQ("plus CPUID.01H:ECX", BIT(21), spec.plus[FEAT_1_ECX]);
    CHECK_EQ("minus CPUID.01H:ECX", BIT(30), spec.minus[FEAT_1_ECX]);
    CHECK(x86_cpu_spec_parse("Penryn-v1,+popcnt", &spec, NULL));
    CHECK_STREQ("versioned name", "Penryn", spec.model->name);
}

static void test_unknown_model_error_lists_every_model(void)
{
    X86CPUSpec spec;
    GError *err = NULL;
    CHECK(!x86_cpu_spec_parse("Skylake-Client", &spec, &err));
    CHECK(err != NULL);
    for (size_t i = 0; i < sizeof(qemu_models) / sizeof(qemu_models[0]); i++)
        CHECK_MSG(strstr(err->message, qemu_models[i].name),
                  "error does not list %s: %s", qemu_models[i].name, err->message);
    CHECK_MSG(strstr(err->message, "max"), "error does not list max: %s", err->message);
    g_error_free(err);
}

static const TestCase cases[] = {
    TEST_CASE(test_named_models_match_qemus_definitions),
    TEST_CASE(test_sandybridge_and_haswell_have_xsaveopt),
    TEST_CASE(test_v1_name_is_the_same_model),
    TEST_CASE(test_parse_named_model_with_features),
    TEST_CASE(test_unknown_model_error_lists_every_model),
    { 0 }
};

int main(int argc, char **argv)
{
    return test_main("cpu-models", cases, argc, argv);
}
