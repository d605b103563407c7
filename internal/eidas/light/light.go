// Package light speaks the eIDAS-Node's "light" protocol, the one a
// national specific part (here the Sésame bridge, or the mock node in
// providers/eidasnode) uses to talk to the EC eIDAS-Node, as the eIDAS-Node
// National IdP and SP Integration Guide specifies it:
//
//   - LightRequest and LightResponse, small XML messages in the
//     http://cef.eidas.eu/LightRequest and http://cef.eidas.eu/LightResponse
//     namespaces (Request, Response, MarshalRequest, ParseRequest, ...);
//   - the LightToken, a base64 "issuer|id|timestamp|digest" string the
//     browser carries in an auto-submitted POST form, whose digest is a
//     SHA-256 over the id, issuer, timestamp and a secret shared per
//     direction (Token);
//   - the four caches, shared by both parties, in which a message waits
//     under its id until the other side takes it once (Cache).
//
// Both sides of Sésame use this package: the broker's bridge and the mock
// node, so that each tests the other with the real thing.
package light

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
)

// Message namespaces (Integration Guide, App. A: lightRequest.xsd and
// lightResponse.xsd, elementFormDefault qualified).
const (
	NSRequest  = "http://cef.eidas.eu/LightRequest"
	NSResponse = "http://cef.eidas.eu/LightResponse"
)

// Natural-person attribute definitions (eIDAS SAML Attribute Profile). A
// definition is always the full URI in light messages.
const (
	NaturalPersonPrefix   = "http://eidas.europa.eu/attributes/naturalperson/"
	AttrPersonIdentifier  = NaturalPersonPrefix + "PersonIdentifier"
	AttrCurrentGivenName  = NaturalPersonPrefix + "CurrentGivenName"
	AttrCurrentFamilyName = NaturalPersonPrefix + "CurrentFamilyName"
	AttrDateOfBirth       = NaturalPersonPrefix + "DateOfBirth"
	AttrPlaceOfBirth      = NaturalPersonPrefix + "PlaceOfBirth"
	AttrGender            = NaturalPersonPrefix + "Gender"
	AttrBirthName         = NaturalPersonPrefix + "BirthName"
	AttrCurrentAddress    = NaturalPersonPrefix + "CurrentAddress"
)

// Notified levels of assurance. A non-notified level is any other URI,
// never under this prefix.
const (
	LoAPrefix      = "http://eidas.europa.eu/LoA/"
	LoALow         = LoAPrefix + "low"
	LoASubstantial = LoAPrefix + "substantial"
	LoAHigh        = LoAPrefix + "high"
)

// Values of a request levelOfAssurance's type attribute; absent means
// notified.
const (
	LoATypeNotified    = "notified"
	LoATypeNonNotified = "nonNotified"
)

// Name identifier formats (the values the schemas allow that matter here).
const (
	NameIDPersistent  = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
	NameIDTransient   = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
	NameIDUnspecified = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
)

// SP types.
const (
	SPTypePublic  = "public"
	SPTypePrivate = "private"
)

// SAML status codes of a LightResponse's status.
const (
	StatusSuccess         = "urn:oasis:names:tc:SAML:2.0:status:Success"
	StatusRequester       = "urn:oasis:names:tc:SAML:2.0:status:Requester"
	StatusResponder       = "urn:oasis:names:tc:SAML:2.0:status:Responder"
	StatusVersionMismatch = "urn:oasis:names:tc:SAML:2.0:status:VersionMismatch"

	SubStatusAuthnFailed            = "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"
	SubStatusInvalidAttrNameOrValue = "urn:oasis:names:tc:SAML:2.0:status:InvalidAttrNameOrValue"
	SubStatusInvalidNameIDPolicy    = "urn:oasis:names:tc:SAML:2.0:status:InvalidNameIDPolicy"
	SubStatusRequestDenied          = "urn:oasis:names:tc:SAML:2.0:status:RequestDenied"
)

// The EC eIDAS-Node's default LightToken issuer names, one per direction
// (its specificCommunicationDefinition*.xml). Each direction also has its
// own secret.
const (
	// IssuerConnectorRequest: specific connector (bridge) → node, a
	// foreign citizen's request.
	IssuerConnectorRequest = "specificCommunicationDefinitionConnectorRequest"
	// IssuerConnectorResponse: node → specific connector, its answer.
	IssuerConnectorResponse = "specificCommunicationDefinitionConnectorResponse"
	// IssuerProxyserviceRequest: node → specific proxy service (bridge),
	// a foreign SP's request for a French citizen.
	IssuerProxyserviceRequest = "specificCommunicationDefinitionProxyserviceRequest"
	// IssuerProxyserviceResponse: specific proxy service → node.
	IssuerProxyserviceResponse = "specificCommunicationDefinitionProxyserviceResponse"
)

// LoARank orders the notified levels: 1 low, 2 substantial, 3 high, 0 for
// anything else.
func LoARank(loa string) int {
	switch loa {
	case LoALow:
		return 1
	case LoASubstantial:
		return 2
	case LoAHigh:
		return 3
	}
	return 0
}

// LoAAtLeast reports whether got is a notified level at least as high as
// want (itself a notified level). A non-notified level never satisfies.
func LoAAtLeast(got, want string) bool {
	g, w := LoARank(got), LoARank(want)
	return g > 0 && w > 0 && g >= w
}

// ErrMalformed is wrapped by every parsing or validation error of a
// message (always as a *FieldError).
var ErrMalformed = errors.New("light: malformed message")

// FieldError says which field of which message is wrong and why.
type FieldError struct {
	// Message is "lightRequest" or "lightResponse".
	Message string
	// Field is the element path below the root, e.g. "id" or
	// "requestedAttributes/attribute[2]/definition"; empty for the
	// document itself.
	Field  string
	Reason string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("light: %s: %s", e.Message, e.Reason)
	}
	return fmt.Sprintf("light: %s: %s: %s", e.Message, e.Field, e.Reason)
}

// Unwrap makes errors.Is(err, ErrMalformed) hold.
func (e *FieldError) Unwrap() error { return ErrMalformed }

// Limits on what a message may hold. They bound memory and keep an id
// usable as a token part and a store key.
const (
	// MaxMessageSize bounds a marshalled message; a real one is a few KB,
	// most of it the base64 CurrentAddress.
	MaxMessageSize = 64 << 10
	// MaxIDLength bounds ids (FranceConnect's are 64 characters, the EC
	// node's about 65).
	MaxIDLength = 256
	// maxText bounds every other text field but attribute values.
	maxText = 1024
	// maxValue bounds one attribute value (a base64 CurrentAddress).
	maxValue = 16 << 10
	// maxAttributes bounds the attributes of one message.
	maxAttributes = 64
	// maxValues bounds the values of one attribute.
	maxValues = 16
)

// ValidID checks that id can be a message id: 1 to MaxIDLength characters
// from A-Z a-z 0-9 and "_-.:~+/=" (UUIDs, NCNames, base64), so never "|",
// which would break the LightToken, nor spaces or control characters.
func ValidID(id string) error {
	if id == "" {
		return errors.New("empty")
	}
	if len(id) > MaxIDLength {
		return fmt.Errorf("longer than %d characters", MaxIDLength)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_' || c == '-' || c == '.' || c == ':' || c == '~' || c == '+' || c == '/' || c == '=':
		default:
			return fmt.Errorf("character %q not allowed (A-Z a-z 0-9 _-.:~+/= only)", c)
		}
	}
	return nil
}

// NewID returns a fresh random message id: "_" and 64 hex digits (256
// bits), an NCName as SAML ids must be, since the node turns it into one.
func NewID() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on supported platforms
	return "_" + hex.EncodeToString(b[:])
}
