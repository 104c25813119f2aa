package ul

import (
	"errors"
	"fmt"
	"strings"
)

// Validate reports whether rq can be encoded as PS3.8 requires: AE titles of
// 1 to 16 characters without control characters or backslash, well-formed
// UIDs of at most 64 characters, 1 to 128 presentation contexts with unique
// odd IDs, each with an abstract syntax and at least one transfer syntax, and
// items that fit their 16-bit lengths. Append itself does not check.
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

// Validate reports whether ac can be encoded: AE titles of at most 16
// characters (they echo the request's, so may be empty), UIDs of at most 64
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

// checkAE checks an AE title (PS3.5 Table 6.2-1, VR AE): at most 16
// characters, no control characters or backslash, not all spaces unless
// empty is allowed.
func checkAE(s string, emptyOK bool) error {
	if len(s) > aeLen {
		return fmt.Errorf("%q has %d characters, at most %d", s, len(s), aeLen)
	}
	if strings.Trim(s, " ") == "" && !emptyOK {
		return errors.New("empty")
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7F || r == '\\' }); i >= 0 {
		return fmt.Errorf("%q has a forbidden character at %d", s, i)
	}
	return nil
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
