/* testcert.h: a Secret document with a self-signed certificate, for configs with HTTPS listeners. */
#ifndef SG_TESTCERT_H
#define SG_TESTCERT_H

/* A self-signed P-256 certificate and key for test Secrets (CN test.example, valid for 100 years). */
#define TEST_CERT_SECRET(ns, name) \
    "apiVersion: v1\nkind: Secret\nmetadata: {name: " name ", namespace: " ns "}\ntype: kubernetes.io/tls\n" \
    "stringData:\n  tls.crt: |\n" \
    "    -----BEGIN CERTIFICATE-----\n" \
    "    MIIBnjCCAUSgAwIBAgIUT/k3hTG7zncf0wTocOcD6BNNm9cwCgYIKoZIzj0EAwIw\n" \
    "    FzEVMBMGA1UEAwwMdGVzdC5leGFtcGxlMCAXDTI2MTEyNDIxMTAwNVoYDzIxMjYx\n" \
    "    MDMxMjExMDA1WjAXMRUwEwYDVQQDDAx0ZXN0LmV4YW1wbGUwWTATBgcqhkjOPQIB\n" \
    "    BggqhkjOPQMBBwNCAATvjul0WrI14JaTt3qmYBZd1Sg0qzuXNM0o3sIl/OXN2cw4\n" \
    "    rMIBD8aelIwHt6VQ5rqDP6JBLQrVgfMS5GGSejvro2wwajAdBgNVHQ4EFgQURYnq\n" \
    "    xC/5xaPSXqathIraTAdl/FYwHwYDVR0jBBgwFoAURYnqxC/5xaPSXqathIraTAdl\n" \
    "    /FYwDwYDVR0TAQH/BAUwAwEB/zAXBgNVHREEEDAOggx0ZXN0LmV4YW1wbGUwCgYI\n" \
    "    KoZIzj0EAwIDSAAwRQIhANduqMWE3Nbb1ruUY8vZLBj8RC4il215Frf3Aems47GE\n" \
    "    AiAfCVYi3f9Q/B/nid/+bGa1P/Bg38BCdkmYThnbUcQ7Rg==\n" \
    "    -----END CERTIFICATE-----\n" \
    "  tls.key: |\n" \
    "    -----BEGIN PRIVATE KEY-----\n" \
    "    MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgj79yHwBQVOSX970b\n" \
    "    0VUWXxB068VujEULXCRnsmaSVYahRANCAATvjul0WrI14JaTt3qmYBZd1Sg0qzuX\n" \
    "    NM0o3sIl/OXN2cw4rMIBD8aelIwHt6VQ5rqDP6JBLQrVgfMS5GGSejvr\n" \
    "    -----END PRIVATE KEY-----\n" \
    ""

/* A ConfigMap with ca.crt: a self-signed P-256 CA certificate (CN unit-test-ca, valid for 100 years; its key was
 * thrown away: it only has to load). */
#define TEST_CA_CONFIGMAP(ns, name) \
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " name ", namespace: " ns "}\n" \
    "data:\n  ca.crt: |\n" \
    "    -----BEGIN CERTIFICATE-----\n" \
    "    MIIBhTCCASugAwIBAgIUdP/ES8O3UP7vB5et9XeeT/UrSOowCgYIKoZIzj0EAwIw\n" \
    "    FzEVMBMGA1UEAwwMdW5pdC10ZXN0LWNhMCAXDTI2MTIwNDIyMDgwM1oYDzIxMjYx\n" \
    "    MTEwMjIwODAzWjAXMRUwEwYDVQQDDAx1bml0LXRlc3QtY2EwWTATBgcqhkjOPQIB\n" \
    "    BggqhkjOPQMBBwNCAASPTkzpMQkrwNO3VGECvceNttFSoHkfessGxeWNP8Ib92Dx\n" \
    "    wc4ocwq58bBsZ3aBYDWOo3PF3dsLzkfcfUoMZ/YPo1MwUTAdBgNVHQ4EFgQUJMLf\n" \
    "    OHSWvsusarMOMy1Vei/TrWMwHwYDVR0jBBgwFoAUJMLfOHSWvsusarMOMy1Vei/T\n" \
    "    rWMwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiA8pCY9MToEw6uH\n" \
    "    SAYelRK/qyjYqSkLbp6icWndiLzGUAIhALDCGQ04WhA9ODvY8fUR/G5fKW6OR2Ob\n" \
    "    DGCQpH+jkTNn\n" \
    "    -----END CERTIFICATE-----\n"

#endif
