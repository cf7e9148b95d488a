/*
 * banned.h - C library functions this code does not use, made compile
 * errors (in the manner of git's banned.h).
 *
 * DESIGN: each has a safe form that says how big its buffer is or keeps no
 * hidden state: snprintf/vsnprintf or a strbuf for sprintf/vsprintf and the
 * str*cpy/str*cat family (strncpy does not terminate, strncat's bound is not
 * the buffer's size), strtok_r for strtok, gmtime_r/localtime_r for
 * gmtime/localtime (a static buffer shared by every thread), and
 * util_iso8601() or strftime for ctime/asctime.
 *
 * Part of the base layer: db/util.h includes it, so every module has it.
 * The headers that declare these functions are included first; their include
 * guards then keep a later #include of them from meeting the macros, so this
 * may come before or after any other header.
 */
#ifndef PARLEY_BANNED_H
#define PARLEY_BANNED_H

#include <stdio.h>
#include <string.h>
#include <time.h>

#define BANNED(func) sorry_##func##_is_a_banned_function

#undef strcpy
#define strcpy(...) BANNED(strcpy)
#undef strcat
#define strcat(...) BANNED(strcat)
#undef strncpy
#define strncpy(...) BANNED(strncpy)
#undef strncat
#define strncat(...) BANNED(strncat)
#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef strtok
#define strtok(...) BANNED(strtok)
#undef gmtime
#define gmtime(...) BANNED(gmtime)
#undef localtime
#define localtime(...) BANNED(localtime)
#undef ctime
#define ctime(...) BANNED(ctime)
#undef ctime_r
#define ctime_r(...) BANNED(ctime_r)
#undef asctime
#define asctime(...) BANNED(asctime)
#undef asctime_r
#define asctime_r(...) BANNED(asctime_r)

#endif
