/* kz_error.c — text for the codes of kz_error.h. */
#include "kz_error.h"

const char *kz_strerror(int code)
{
    switch (code) {
#define KZ__ERR_CASE(name, value, text) \
    case value:                         \
        return text;
        KZ_ERROR_TABLE(KZ__ERR_CASE)
#undef KZ__ERR_CASE
    }
    return "unknown error";
}
