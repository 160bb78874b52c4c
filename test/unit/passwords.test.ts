import { expect, test } from "bun:test";
import { hashPassword, verifyPassword } from "../../src/identity/passwords.ts";

// Made with Python's hashlib.pbkdf2_hmac (salt = the decoded B64 bytes); Anki's own sync
// server accepted it with PASSWORDS_HASHED=1 for the password "secret-pw".
const ANKI_SERVER_PHC =
  "$pbkdf2-sha256$i=10000,l=32$c29tZXNhbHRzb21lc2FsdA$XqhLU/cuF7VtwtoZ/vg7IOsG/atGWL5wSPq5MPmqOIA";

test("PBKDF2 PHC strings as Anki's server accepts them", async () => {
  expect(await verifyPassword("secret-pw", ANKI_SERVER_PHC)).toBe(true);
  expect(await verifyPassword("wrong", ANKI_SERVER_PHC)).toBe(false);
  expect(await verifyPassword("secret-pw", ANKI_SERVER_PHC.replace("i=10000", "i=9999"))).toBe(
    false,
  );
});

test("argon2id hashes we make", async () => {
  const hash = await hashPassword("pw");
  expect(hash.startsWith("$argon2id$")).toBe(true);
  expect(await verifyPassword("pw", hash)).toBe(true);
  expect(await verifyPassword("px", hash)).toBe(false);
});

test("anything else is refused", async () => {
  expect(await verifyPassword("pw", "pw")).toBe(false);
  expect(await verifyPassword("pw", "$pbkdf2-md5$i=1$abc$abc")).toBe(false);
});
