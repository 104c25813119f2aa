package ul

import (
	"errors"
	"fmt"
	"strings"
)

// Validate reports whether rq can be encoded as PS3.8 requires: valid AE
// titles (ValidAE), well-formed UIDs of at most 64 characters, 1 to 128
// presentation contexts with unique odd IDs, each with an abstract syntax and
// at least one transfer syntax, and items that fit their 16-bit lengths. Append itself does not check.
func (rq *AAssociateRQ) Validate() error {
	var errs []error
	for _, ae := range []struct{ name, v string }{{"called", rq.CalledAE}, {"calling", rq.CallingAE}} {
		if err := checkAE(ae.v, false); err != nil {
			errs = append(errs, fmt.Errorf("%s AE: %w", ae.name, err))
		}
	}
	errs = append(errs, checkUID("application context", rq.ApplicationContext, true))
	switch n := len(rq.PresentationContexts); {
	case n == 0:
		errs = append(errs, errors.New("no presentation context"))
	case n > maxContexts:
		errs = append(errs, fmt.Errorf("%d presentation contexts, at most %d", n, maxContexts))
	}
	var seen [256]bool
	for _, pc := range rq.PresentationContexts {
		if pc.ID%2 == 0 {
			errs = append(errs, fmt.Errorf("presentation context ID %d is even", pc.ID))
		}
		if seen[pc.ID] {
			errs = append(errs, fmt.Errorf("presentation context ID %d is repeated", pc.ID))
		}
		seen[pc.ID] = true
		errs = append(errs, checkUID("abstract syntax", pc.AbstractSyntax, true))
		if len(pc.TransferSyntaxes) == 0 {
			errs = append(errs, fmt.Errorf("presentation context %d has no transfer syntax", pc.ID))
		}
		for _, ts := range pc.TransferSyntaxes {
			errs = append(errs, checkUID("transfer syntax", ts, true))
		}
		if n := len(pc.AbstractSyntax) + 4 + 4*len(pc.TransferSyntaxes) + 4 + lenSum(pc.TransferSyntaxes); n > 0xFFFF {
			errs = append(errs, fmt.Errorf("presentation context %d item of %d bytes", pc.ID, n))
		}
	}
	errs = append(errs, rq.UserInfo.validate(true))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid A-ASSOCIATE-RQ: %w", err)
	}
	return nil
}

// Validate reports whether ac can be encoded: valid AE titles (ValidAE; they
// echo the request's, so may be empty), UIDs of at most 64
// characters, an accepted transfer syntax for every accepted context, at most
// 128 presentation contexts, and items that fit their 16-bit lengths.
func (ac *AAssociateAC) Validate() error {
	var errs []error
	for _, ae := range []struct{ name, v string }{{"called", ac.CalledAE}, {"calling", ac.CallingAE}} {
		if err := checkAE(ae.v, true); err != nil {
			errs = append(errs, fmt.Errorf("%s AE: %w", ae.name, err))
		}
	}
	errs = append(errs, checkUID("application context", ac.ApplicationContext, false))
	if n := len(ac.PresentationContexts); n > maxContexts {
		errs = append(errs, fmt.Errorf("%d presentation contexts, at most %d", n, maxContexts))
	}
	for _, pc := range ac.PresentationContexts {
		if pc.Result == PCAcceptance && pc.TransferSyntax == "" {
			errs = append(errs, fmt.Errorf("presentation context %d accepted without transfer syntax", pc.ID))
		}
		if len(pc.TransferSyntax) > 64 {
			errs = append(errs, fmt.Errorf("transfer syntax of %d characters", len(pc.TransferSyntax)))
		}
	}
	errs = append(errs, ac.UserInfo.validate(false))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid A-ASSOCIATE-AC: %w", err)
	}
	return nil
}

func (u *UserInfo) validate(strict bool) error {
	var errs []error
	if u.ImplementationClassUID != "" {
		errs = append(errs, checkUID("implementation class UID", u.ImplementationClassUID, strict))
	}
	if n := len(u.ImplementationVersionName); n > 16 {
		errs = append(errs, fmt.Errorf("implementation version name of %d characters, at most 16", n))
	}
	for _, r := range u.Roles {
		errs = append(errs, checkUID("role selection SOP class", r.SOPClassUID, strict))
	}
	if id := u.Identity; id != nil && (len(id.Primary) > 0xFFFF || len(id.Secondary) > 0xFFFF) {
		errs = append(errs, errors.New("user identity field over 65535 bytes"))
	}
	if id := u.IdentityAC; id != nil && len(id.ServerResponse) > 0xFFFF {
		errs = append(errs, errors.New("user identity server response over 65535 bytes"))
	}
	for _, it := range u.Unknown {
		if len(it.Data) > 0xFFFF {
			errs = append(errs, fmt.Errorf("user information sub-item 0x%02x over 65535 bytes", it.Type))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// Sub-items are sound; what is left is the 16-bit length of the item.
	if n := len(u.append(nil)) - 4; n > 0xFFFF {
		return fmt.Errorf("user information item of %d bytes", n)
	}
	return nil
}

func lenSum(s []string) int {
	n := 0
	for _, v := range s {
		n += len(v)
	}
	return n
}

// ValidAE checks an AE title as PS3.5 §6.2 (Table 6.2-1) defines the AE value:
// 1 to 16 characters of the Default Character Repertoire (ISO-IR 6, bytes 0x20
// to 0x7E) without the backslash, not only spaces. A byte above 0x7E is outside
// the repertoire, whatever character set a peer declares. It is the one
// definition of a valid AE title: the PDUs' Validate methods and the probes'
// flags and dictionaries check with it.
func ValidAE(s string) error {
	if strings.Trim(s, " ") == "" {
		return errors.New("AE title is empty")
	}
	if len(s) > aeLen {
		return fmt.Errorf("AE title %q has %d characters, longer than %d", s, len(s), aeLen)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7E || c == '\\' {
			return fmt.Errorf("AE title %q has a forbidden character at %d: the default repertoire without backslash or control characters only", s, i)
		}
	}
	return nil
}

// checkAE checks an AE title of a PDU with ValidAE; an empty or all-space one
// passes when emptyOK (an A-ASSOCIATE-AC's titles echo the request's).
func checkAE(s string, emptyOK bool) error {
	if strings.Trim(s, " ") == "" {
		if emptyOK {
			return nil
		}
		return errors.New("empty")
	}
	return ValidAE(s)
}

// checkUID checks a UID: non-empty and at most 64 characters; strict also
// requires the PS3.5 §9.1 character set, digits and dots.
func checkUID(what, s string, strict bool) error {
	switch {
	case s == "":
		return fmt.Errorf("%s: empty", what)
	case len(s) > 64:
		return fmt.Errorf("%s: %d characters, at most 64", what, len(s))
	case strict && strings.Trim(s, "0123456789.") != "":
		return fmt.Errorf("%s %q: not a UID", what, s)
	}
	return nil
}
