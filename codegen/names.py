"""Names that go into C: identifiers that cannot break the code, comments that cannot end early.

A model or layer name comes from the user ("dense 1", "my-model", "int", "a*/b"). It must
never break or inject into the generated C, so:

* `c_identifier` turns any string into a C identifier: letters, digits and '_' only, not
  starting with a digit, never a C keyword or a C library name (`tanh`, `exp`, `int32_t`),
  never a name the C standard reserves (`_X...`, `__...`).
* `Namer` hands out identifiers that stay unique after sanitising ("a-b" and "a_b" both
  become "a_b": the second gets "a_b_2"), including every identifier derived from a name
  (`dense_0` also claims `dense_0_weight`, `dense_0_bias`, ...).
* `c_comment` makes any string safe inside `/* ... */` and `// ...`: printable ASCII only,
  no `*/`, no `/*`, no trigraph `??x`, no backslash that could splice two lines.
"""
import re

# C99 keywords (6.4.1) and the names the generated file itself declares: a layer named like
# one of them gets a suffix.
C_KEYWORDS = frozenset("""
    auto break case char const continue default do double else enum extern float for goto if
    inline int long register restrict return short signed sizeof static struct switch typedef
    union unsigned void volatile while _Bool _Complex _Imaginary
""".split())
# The C library's names (C99 7.x): compilers know many as built-ins, so a static function
# `tanh` or `exp` with another signature is an error or a warning. A layer may not take them.
_MATH = """
    acos asin atan atan2 cos sin tan acosh asinh atanh cosh sinh tanh exp exp2 expm1 frexp ilogb
    ldexp log log10 log1p log2 logb modf scalbn scalbln cbrt fabs hypot pow sqrt erf erfc lgamma
    tgamma ceil floor nearbyint rint lrint llrint round lround llround trunc fmod remainder remquo
    copysign nan nextafter nexttoward fdim fmax fmin fma signbit isnan isinf isfinite isnormal
    fpclassify
""".split()
LIBC_NAMES = frozenset(_MATH + [f + s for f in _MATH for s in "fl"] + """
    abs labs llabs div ldiv lldiv atof atoi atol atoll strtod strtof strtold strtol strtoll strtoul
    strtoull rand srand calloc free malloc realloc alloca abort atexit exit _Exit getenv system
    bsearch qsort mblen mbtowc wctomb mbstowcs wcstombs memcpy memmove memcmp memchr memset strcpy
    strncpy strcat strncat strcmp strncmp strcoll strxfrm strchr strrchr strspn strcspn strpbrk
    strstr strtok strerror strlen strdup strndup bzero bcmp bcopy index rindex ffs printf fprintf
    sprintf snprintf vprintf vfprintf vsprintf vsnprintf scanf fscanf sscanf puts putchar fputs
    fputc putc getc getchar fgetc fgets gets fopen fclose fread fwrite fflush remove rename tmpfile
    tmpnam fseek ftell rewind perror feof ferror clearerr setbuf setvbuf ungetc fgetpos fsetpos
    isalnum isalpha isblank iscntrl isdigit isgraph islower isprint ispunct isspace isupper
    isxdigit tolower toupper clock difftime mktime time asctime ctime gmtime localtime strftime
    setjmp longjmp signal raise assert errno offsetof va_start va_end va_arg va_copy main
""".split())
STDINT_NAMES = frozenset("""
    int8_t int16_t int32_t int64_t uint8_t uint16_t uint32_t uint64_t intptr_t uintptr_t
    intmax_t uintmax_t size_t ptrdiff_t wchar_t NULL bool true false
""".split())
# <stdint.h> typedefs and macros by pattern: int_least8_t, INT32_MAX, UINT64_C, ...
_STDINT_PATTERN = re.compile(r"^(u?int(_least|_fast)?[0-9]+_t|U?INT(_LEAST|_FAST)?[0-9]+_(MIN|MAX|C)"
                             r"|U?INTMAX_(MIN|MAX|C)|U?INTPTR_(MIN|MAX)|PTRDIFF_(MIN|MAX)|SIZE_MAX"
                             r"|WCHAR_(MIN|MAX)|WINT_(MIN|MAX)|SIG_ATOMIC_(MIN|MAX)|PRI\w+|SCN\w+)$")


def c_identifier(text, fallback="unnamed", whole_name=True):
    """Any string -> a valid, non-reserved C identifier (not yet unique).

    whole_name=False is for a prefix that never stands alone ('int' in 'int_invoke'): the
    keyword and library checks are then not needed."""
    ident = re.sub(r"[^A-Za-z0-9_]+", "_", str(text))     # 'dense 1' -> 'dense_1'
    ident = re.sub(r"_+", "_", ident).strip("_")           # no '__' (reserved), no leading '_'
    if not ident:
        ident = fallback
    if ident[0].isdigit():
        ident = "n" + ident                                 # '1st' -> 'n1st'
    if whole_name and (ident in C_KEYWORDS or ident in STDINT_NAMES or ident in LIBC_NAMES
            or _STDINT_PATTERN.match(ident)):
        ident += "_"                                        # 'int' -> 'int_', 'tanh' -> 'tanh_'
    return ident


def c_macro_prefix(ident):
    """The upper-case prefix of a model's macros: 'sine' -> 'SINE'."""
    return ident.upper()


class Namer:
    """Hands out unique identifiers; a name claims itself plus its derived names."""

    def __init__(self, reserved=()):
        self.used = set(reserved) | set(C_KEYWORDS) | set(STDINT_NAMES) | set(LIBC_NAMES)

    def claim(self, text, suffixes=("",), fallback="unnamed"):
        base = c_identifier(text, fallback)
        candidate, n = base, 1
        while any(candidate + s in self.used or _STDINT_PATTERN.match(candidate + s)
                  for s in suffixes):
            n += 1
            candidate = f"{base}_{n}"
        self.used.update(candidate + s for s in suffixes)
        return candidate


def c_comment(text):
    """Any string -> text that is safe inside a C comment of either kind, on one line."""
    out = []
    for ch in str(text):
        code = ord(ch)
        if ch == "\\" or code < 32 or code == 127:
            out.append(f"\\x{code:02x}")                   # never a trailing '\' (line splice)
        elif code > 127:
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(ch)
    text = "".join(out)
    # '*/' would end the comment, '/*' inside one warns (-Wcomment), '??/' is a trigraph
    # for '\' under -std=c99 (and '??=' etc. warn with -Wtrigraphs). Break each pair apart.
    while "*/" in text or "/*" in text or "??" in text:
        text = text.replace("*/", "* /").replace("/*", "/ *").replace("??", "? ?")
    return text


def template_identifiers(texts):
    """Every C identifier the templates spell out (locals, helpers, types), for `Namer`.

    Jinja tags and C comments are removed first, so only real C tokens count."""
    used = set()
    for text in texts:
        text = re.sub(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", " ", text, flags=re.S)
        text = re.sub(r"/\*.*?\*/|//[^\n]*", " ", text, flags=re.S)
        used.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))
    return used
