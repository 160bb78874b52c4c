/*
 * SQLite loadable extension registering Anki's `unicase` collation: strings are compared
 * code point by code point after full Unicode case folding, matching
 * `UniCase::new(a).cmp(&UniCase::new(b))` from the Rust unicase crate 2.6.0.
 * (Its ASCII-only path lowercases ASCII, which is the same thing as folding it.)
 */
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT1

#include <stddef.h>
#include <stdint.h>

#include "casefold_table.h"

#define REPLACEMENT 0xFFFDu

/*
 * Decodes the code point at s[*i] and advances *i. Ill-formed input yields U+FFFD per
 * maximal invalid subpart, as Rust's String::from_utf8_lossy does (Anki's rusqlite
 * collation glue decodes with it), so such strings order exactly as they do in Anki.
 */
static uint32_t decode(const unsigned char *s, int n, int *i) {
  unsigned char b = s[(*i)++];
  unsigned char lo = 0x80, hi = 0xBF;
  uint32_t cp;
  int more;

  if (b < 0x80) return b;
  if (b >= 0xC2 && b <= 0xDF) {
    more = 1;
    cp = b & 0x1F;
  } else if (b >= 0xE0 && b <= 0xEF) {
    more = 2;
    cp = b & 0x0F;
    if (b == 0xE0) lo = 0xA0; /* overlong */
    if (b == 0xED) hi = 0x9F; /* surrogates */
  } else if (b >= 0xF0 && b <= 0xF4) {
    more = 3;
    cp = b & 0x07;
    if (b == 0xF0) lo = 0x90; /* overlong */
    if (b == 0xF4) hi = 0x8F; /* above U+10FFFF */
  } else {
    return REPLACEMENT;
  }
  while (more--) {
    if (*i >= n || s[*i] < lo || s[*i] > hi) return REPLACEMENT;
    cp = (cp << 6) | (s[(*i)++] & 0x3F);
    lo = 0x80;
    hi = 0xBF;
  }
  return cp;
}

/* Writes the case folding of cp to out and returns its length (1 to 3). */
static int fold(uint32_t cp, uint32_t out[3]) {
  size_t lo = 0, hi = sizeof CASEFOLD / sizeof CASEFOLD[0];

  if (cp < 0x80) {
    out[0] = (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
    return 1;
  }
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (CASEFOLD[mid].from < cp) {
      lo = mid + 1;
    } else if (CASEFOLD[mid].from > cp) {
      hi = mid;
    } else {
      const uint32_t *to = CASEFOLD[mid].to;
      out[0] = to[0];
      out[1] = to[1];
      out[2] = to[2];
      return to[2] ? 3 : to[1] ? 2 : 1;
    }
  }
  out[0] = cp;
  return 1;
}

/* A string being read as its sequence of folded code points. */
struct folded {
  const unsigned char *s;
  int n, i;
  uint32_t buf[3];
  int len, pos;
};

static int next_folded(struct folded *f, uint32_t *cp) {
  if (f->pos == f->len) {
    if (f->i >= f->n) return 0;
    f->len = fold(decode(f->s, f->n, &f->i), f->buf);
    f->pos = 0;
  }
  *cp = f->buf[f->pos++];
  return 1;
}

static int unicase_compare(void *unused, int n1, const void *s1, int n2, const void *s2) {
  struct folded a = {s1, n1, 0, {0}, 0, 0};
  struct folded b = {s2, n2, 0, {0}, 0, 0};
  (void)unused;

  for (;;) {
    uint32_t x, y;
    int has_a = next_folded(&a, &x);
    int has_b = next_folded(&b, &y);
    if (!has_a || !has_b) return has_a - has_b; /* a proper prefix sorts first */
    if (x != y) return x < y ? -1 : 1;
  }
}

int sqlite3_unicase_init(sqlite3 *db, char **err, const sqlite3_api_routines *api) {
  SQLITE_EXTENSION_INIT2(api);
  (void)err;
  return sqlite3_create_collation_v2(db, "unicase", SQLITE_UTF8, NULL, unicase_compare, NULL);
}

/* Default entry point, so the library still loads if it is installed under another name. */
int sqlite3_extension_init(sqlite3 *db, char **err, const sqlite3_api_routines *api) {
  return sqlite3_unicase_init(db, err, api);
}
