package ul

import (
	"encoding/binary"
	"fmt"
)

// User information sub-item types (PS3.8 Annex D, PS3.7 Annex D.3.3).
const (
	subMaxLength         = 0x51
	subImplementationUID = 0x52
	subAsyncOps          = 0x53
	subRole              = 0x54
	subImplementationVer = 0x55
	subIdentityRQ        = 0x58
	subIdentityAC        = 0x59
)

// User identity types (PS3.7 §D.3.3.7.1, Table D.3-14).
const (
	IdentityUsername         byte = 1
	IdentityUsernamePasscode byte = 2
	IdentityKerberos         byte = 3
	IdentitySAML             byte = 4
	IdentityJWT              byte = 5
)

// UserInfo is the user information item of an A-ASSOCIATE-RQ or -AC and its
// sub-items. PS3.8 §9.3.2.3, Annex D; PS3.7 Annex D.3.3
type UserInfo struct {
	// MaxLength is the largest P-DATA-TF variable field the sender can
	// receive; 0 means no limit. PS3.8 §D.1
	MaxLength uint32
	// ImplementationClassUID and ImplementationVersionName identify the
	// sender's software. PS3.7 §D.3.3.2
	ImplementationClassUID, ImplementationVersionName string
	AsyncOps                                          *AsyncOps
	Roles                                             []RoleSelection
	Identity                                          *UserIdentityRQ // requests only
	IdentityAC                                        *UserIdentityAC // accepts only
	// Unknown holds the sub-items this package does not interpret, such as
	// SOP class extended negotiation (0x56, 0x57), in the order received: the
	// first maxUnknownItems of them, the rest skipped.
	Unknown []Item
}

// AsyncOps is the asynchronous operations window negotiation sub-item; 0
// means unlimited. PS3.7 §D.3.3.3
type AsyncOps struct {
	Invoked, Performed uint16
}

// RoleSelection is an SCP/SCU role selection sub-item. PS3.7 §D.3.3.4
type RoleSelection struct {
	SOPClassUID string
	SCU, SCP    bool
}

// UserIdentityRQ is the user identity negotiation sub-item of a request.
// Primary and Secondary hold credentials: never log them. PS3.7 §D.3.3.7.1
type UserIdentityRQ struct {
	Type                      byte // IdentityUsername ...
	PositiveResponseRequested bool
	Primary, Secondary        []byte // Secondary only with IdentityUsernamePasscode
}

// UserIdentityAC is the user identity negotiation sub-item of an accept.
// PS3.7 §D.3.3.7.2
type UserIdentityAC struct {
	ServerResponse []byte
}

// Item is a user information sub-item kept as received.
type Item struct {
	Type byte
	Data []byte
}

// parseUserInfo parses the value of a user information item. Repeated
// sub-items of a single-valued kind count once (the first); unknown ones go to
// Unknown.
func parseUserInfo(b []byte) (UserInfo, error) {
	var u UserInfo
	var seenMax, seenUID, seenVer bool
	err := eachItem(b, func(typ byte, v []byte) error {
		switch typ {
		case subMaxLength:
			if len(v) != 4 {
				return subLenError(typ, len(v))
			}
			if !seenMax {
				seenMax = true
				u.MaxLength = binary.BigEndian.Uint32(v)
			}
		case subImplementationUID:
			if !seenUID {
				seenUID = true
				u.ImplementationClassUID = trimPadding(v)
			}
		case subImplementationVer:
			if !seenVer {
				seenVer = true
				u.ImplementationVersionName = trimPadding(v)
			}
		case subAsyncOps:
			if len(v) != 4 {
				return subLenError(typ, len(v))
			}
			if u.AsyncOps == nil {
				u.AsyncOps = &AsyncOps{Invoked: binary.BigEndian.Uint16(v), Performed: binary.BigEndian.Uint16(v[2:])}
			}
		case subRole:
			uid, rest, ok := cutField(v)
			if !ok || len(rest) != 2 {
				return subLenError(typ, len(v))
			}
			if len(u.Roles) == maxRoles {
				break // one per presentation context at most; the rest are skipped
			}
			u.Roles = append(u.Roles, RoleSelection{SOPClassUID: trimPadding(uid), SCU: rest[0] != 0, SCP: rest[1] != 0})
		case subIdentityRQ:
			if len(v) < 2 {
				return subLenError(typ, len(v))
			}
			primary, rest, ok := cutField(v[2:])
			if !ok {
				return subLenError(typ, len(v))
			}
			secondary, rest, ok := cutField(rest)
			if !ok || len(rest) != 0 {
				return subLenError(typ, len(v))
			}
			if u.Identity == nil {
				u.Identity = &UserIdentityRQ{Type: v[0], PositiveResponseRequested: v[1] != 0,
					Primary: clone(primary), Secondary: clone(secondary)}
			}
		case subIdentityAC:
			resp, rest, ok := cutField(v)
			if !ok || len(rest) != 0 {
				return subLenError(typ, len(v))
			}
			if u.IdentityAC == nil {
				u.IdentityAC = &UserIdentityAC{ServerResponse: clone(resp)}
			}
		default:
			if len(u.Unknown) < maxUnknownItems {
				u.Unknown = append(u.Unknown, Item{Type: typ, Data: clone(v)})
			}
		}
		return nil
	})
	if err != nil {
		return UserInfo{}, fmt.Errorf("user information: %w", err)
	}
	return u, nil
}

func subLenError(typ byte, n int) error {
	return fmt.Errorf("%w: sub-item 0x%02x of %d bytes", ErrMalformed, typ, n)
}

// cutField splits a 16-bit-length-prefixed field off b.
func cutField(b []byte) (field, rest []byte, ok bool) {
	if len(b) < 2 {
		return nil, nil, false
	}
	n := int(binary.BigEndian.Uint16(b))
	if n > len(b)-2 {
		return nil, nil, false
	}
	return b[2 : 2+n], b[2+n:], true
}

// clone copies b so that a parsed UserInfo does not pin the PDU body; empty
// is nil.
func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// append appends the user information item. The maximum length sub-item is
// mandatory and always written; the others when set.
func (u *UserInfo) append(b []byte) []byte {
	i := len(b)
	b = append(b, itemUserInfo, 0, 0, 0)
	b = append(b, subMaxLength, 0, 0, 4)
	b = binary.BigEndian.AppendUint32(b, u.MaxLength)
	if u.ImplementationClassUID != "" {
		b = appendItem(b, subImplementationUID, u.ImplementationClassUID)
	}
	if u.AsyncOps != nil {
		b = append(b, subAsyncOps, 0, 0, 4)
		b = binary.BigEndian.AppendUint16(b, u.AsyncOps.Invoked)
		b = binary.BigEndian.AppendUint16(b, u.AsyncOps.Performed)
	}
	for _, r := range u.Roles {
		j := len(b)
		b = append(b, subRole, 0, 0, 0)
		b = appendField(b, r.SOPClassUID)
		b = append(b, boolByte(r.SCU), boolByte(r.SCP))
		setItemLen(b, j)
	}
	if u.ImplementationVersionName != "" {
		b = appendItem(b, subImplementationVer, u.ImplementationVersionName)
	}
	if id := u.Identity; id != nil {
		j := len(b)
		b = append(b, subIdentityRQ, 0, 0, 0, id.Type, boolByte(id.PositiveResponseRequested))
		b = appendField(b, id.Primary)
		b = appendField(b, id.Secondary)
		setItemLen(b, j)
	}
	if id := u.IdentityAC; id != nil {
		j := len(b)
		b = append(b, subIdentityAC, 0, 0, 0)
		b = appendField(b, id.ServerResponse)
		setItemLen(b, j)
	}
	for _, it := range u.Unknown {
		b = appendItem(b, it.Type, it.Data)
	}
	setItemLen(b, i)
	return b
}

// appendField appends a 16-bit-length-prefixed field, cut at 65535 bytes
// (Validate reports longer ones).
func appendField[T string | []byte](b []byte, s T) []byte {
	if len(s) > 0xFFFF {
		s = s[:0xFFFF]
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}
