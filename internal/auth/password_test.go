package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestHashVerifyPassword(t *testing.T) {
	h, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q lacks the expected PHC prefix", h)
	}
	// 16-byte salt and 32-byte key in raw base64 are 22 and 43 characters.
	parts := strings.Split(h, "$")
	if len(parts[4]) != 22 || len(parts[5]) != 43 {
		t.Fatalf("salt/hash lengths %d/%d, want 22/43", len(parts[4]), len(parts[5]))
	}

	ok, err := VerifyPassword(h, "correct horse battery")
	if err != nil || !ok {
		t.Fatalf("right password: ok=%v err=%v, want true, nil", ok, err)
	}
	ok, err = VerifyPassword(h, "correct horse batterz")
	if err != nil || ok {
		t.Fatalf("wrong password: ok=%v err=%v, want false, nil", ok, err)
	}

	h2, _ := HashPassword("correct horse battery")
	if h2 == h {
		t.Fatal("two hashes of the same password are equal; salt not random")
	}
}

// Hashes from the reference implementation (the argon2 CLI, salt "somesaltsomesalt") verify, including
// ones made with other parameters, e.g. before the cost was raised.
func TestVerifyPasswordReferenceVectors(t *testing.T) {
	tests := []struct{ hash, password string }{
		{"$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$K13EBUiG7JV+9ZxztmHFTdb7J0WQsnj2V8bZaqyPptE", "password"},
		{"$argon2id$v=19$m=64,t=1,p=2$c29tZXNhbHRzb21lc2FsdA$3l0+SKvRmk8M6QFdrgl5BmJzovrlNjuq59lIBkZBxYI", "hunter2hunter2"},
	}
	for _, tt := range tests {
		ok, err := VerifyPassword(tt.hash, tt.password)
		if err != nil || !ok {
			t.Errorf("VerifyPassword(%q, %q) = %v, %v; want true, nil", tt.hash, tt.password, ok, err)
		}
		if ok, err := VerifyPassword(tt.hash, tt.password+"x"); err != nil || ok {
			t.Errorf("VerifyPassword(%q, wrong) = %v, %v; want false, nil", tt.hash, ok, err)
		}
	}
}

func TestVerifyPasswordMalformed(t *testing.T) {
	good, _ := HashPassword("whatever-whatever")
	p := strings.Split(good, "$")
	tests := []struct{ hash, want string }{
		{"", "malformed password hash: want 5 $-separated fields"},
		{"plaintext", "malformed password hash: want 5 $-separated fields"},
		{"$2a$10$abcdefghijklmnopqrstuv", "malformed password hash: want 5 $-separated fields"},
		{strings.Replace(good, "argon2id", "argon2i", 1), `malformed password hash: algorithm "argon2i", want argon2id`},
		{strings.Replace(good, "v=19", "v=16", 1), `malformed password hash: version "v=16", want v=19`},
		{strings.Replace(good, "m=19456,t=2,p=1", "t=2,m=19456,p=1", 1), `malformed password hash: parameters "t=2,m=19456,p=1", want m=,t=,p=`},
		{strings.Replace(good, "t=2", "t=x", 1), `malformed password hash: parameter t: strconv.ParseUint: parsing "x": invalid syntax`},
		{strings.Replace(good, "t=2", "t=0", 1), `malformed password hash: parameters "m=19456,t=0,p=1" out of range`},
		{strings.Replace(good, "p=1", "p=0", 1), `malformed password hash: parameters "m=19456,t=2,p=0" out of range`},
		{strings.Replace(good, "m=19456", "m=99999999", 1), `malformed password hash: parameters "m=99999999,t=2,p=1" out of range`},
		{"$argon2id$v=19$m=19456,t=2,p=1$!!!$" + p[5], "malformed password hash: salt: illegal base64 data at input byte 0"},
		{"$argon2id$v=19$m=19456,t=2,p=1$" + p[4] + "$" + p[5][:8], "malformed password hash: salt or hash too short"},
	}
	for _, tt := range tests {
		ok, err := VerifyPassword(tt.hash, "whatever-whatever")
		if ok || err == nil {
			t.Errorf("VerifyPassword(%q) = %v, %v; want false and an error", tt.hash, ok, err)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("VerifyPassword(%q) error %q, want %q", tt.hash, err, tt.want)
		}
		if !errors.Is(err, ErrMalformedHash) {
			t.Errorf("VerifyPassword(%q) error does not wrap ErrMalformedHash", tt.hash)
		}
	}
}

func TestGeneratePassword(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		p := GeneratePassword()
		if len(p) != 20 {
			t.Fatalf("GeneratePassword() = %q, %d characters, want 20", p, len(p))
		}
		if i := strings.IndexFunc(p, func(r rune) bool { return !strings.ContainsRune(passwordAlphabet, r) }); i >= 0 {
			t.Fatalf("GeneratePassword() = %q has %q outside the alphabet", p, p[i])
		}
		if strings.ContainsAny(p, "0Oo1lI") {
			t.Fatalf("GeneratePassword() = %q has an ambiguous character", p)
		}
		if err := CheckPasswordPolicy(p); err != nil {
			t.Fatalf("generated password %q fails the policy: %v", p, err)
		}
		seen[p] = true
	}
	if len(seen) != 50 {
		t.Fatalf("50 generated passwords have only %d distinct", len(seen))
	}
}

func TestCheckPasswordPolicy(t *testing.T) {
	tests := []struct{ pw, want string }{
		{"", "password too weak: needs at least 12 characters, has 0"},
		{"short", "password too weak: needs at least 12 characters, has 5"},
		{"ééééééééééé", "password too weak: needs at least 12 characters, has 11"}, // counts characters, not bytes
		{"aaaaaaaaaaaaaaaa", "password too weak: is one character repeated"},
		{"€€€€€€€€€€€€", "password too weak: is one character repeated"},
		{"aaaaaaaaaaab", ""},
		{"correct horse battery staple", ""},
	}
	for _, tt := range tests {
		err := CheckPasswordPolicy(tt.pw)
		got := ""
		if err != nil {
			got = err.Error()
			if !errors.Is(err, ErrWeakPassword) {
				t.Errorf("CheckPasswordPolicy(%q) error does not wrap ErrWeakPassword", tt.pw)
			}
		}
		if got != tt.want {
			t.Errorf("CheckPasswordPolicy(%q) = %q, want %q", tt.pw, got, tt.want)
		}
	}
}
