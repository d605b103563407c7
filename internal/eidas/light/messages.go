package light

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
)

// Attribute is one requested or returned attribute: its definition, a full
// URI (AttrPersonIdentifier, ...), and its values. A requested attribute
// usually has none.
type Attribute struct {
	Definition string
	Values     []string
}

// Request is a LightRequest: what the specific connector asks the node
// (foreign citizen → French SP), or what the node hands the specific proxy
// service (French citizen → foreign SP).
type Request struct {
	// ID correlates the response (its InResponseToID); it is also the
	// cache key and the LightToken's id.
	ID string
	// Issuer names the requester; the node does not use it, Sésame's
	// mock node keys its connector response URLs by it.
	Issuer string
	// CitizenCountryCode is the citizen's country, ISO 3166-1 alpha-2
	// (with the EU's EL and UK, and the test code CB).
	CitizenCountryCode string
	// LevelOfAssurance is the notified level asked for (LoALow, ...).
	LevelOfAssurance string
	// NonNotifiedLoAs are extra non-notified levels (type="nonNotified").
	NonNotifiedLoAs []string
	// NameIDFormat, ProviderName, SPType (SPTypePublic/Private),
	// SPCountryCode, RequesterID and RelayState are optional.
	NameIDFormat  string
	ProviderName  string
	SPType        string
	SPCountryCode string
	RequesterID   string
	// RelayState comes back unchanged in the response; the requester
	// checks it.
	RelayState          string
	RequestedAttributes []Attribute
}

// Status is a LightResponse's outcome.
type Status struct {
	// Failure is true when the authentication failed; StatusCode then is
	// StatusRequester, StatusResponder or StatusVersionMismatch.
	Failure    bool
	StatusCode string
	// SubStatusCode refines a failure (SubStatusAuthnFailed when the
	// citizen cancelled or failed, SubStatusRequestDenied, ...).
	SubStatusCode string
	StatusMessage string
}

// Response is a LightResponse.
type Response struct {
	ID string
	// InResponseToID is the Request's ID.
	InResponseToID string
	Consent        string
	Issuer         string
	IPAddress      string
	RelayState     string
	// Subject is the citizen's identifier for this SP; on the proxy side
	// the node prefixes it "FR/<SP country>/".
	Subject             string
	SubjectNameIDFormat string
	// LevelOfAssurance is the level the citizen was authenticated at.
	LevelOfAssurance string
	Status           Status
	Attributes       []Attribute
}

// Values returns the values of the attribute with definition def, nil if
// absent.
func (r *Response) Values(def string) []string { return values(r.Attributes, def) }

// Value returns the first value of the attribute def, "" if absent.
func (r *Response) Value(def string) string {
	if v := r.Values(def); len(v) > 0 {
		return v[0]
	}
	return ""
}

// Requests reports whether the request asks for the attribute def.
func (r *Request) Requests(def string) bool {
	for _, a := range r.RequestedAttributes {
		if a.Definition == def {
			return true
		}
	}
	return false
}

func values(attrs []Attribute, def string) []string {
	for _, a := range attrs {
		if a.Definition == def {
			return a.Values
		}
	}
	return nil
}

// The name identifier formats both schemas allow.
var nameIDFormats = []string{
	NameIDPersistent, NameIDTransient, NameIDUnspecified,
	"urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
	"urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName",
	"urn:oasis:names:tc:SAML:1.1:nameid-format:WindowsDomainQualifiedName",
	"urn:oasis:names:tc:SAML:2.0:nameid-format:kerberos",
	"urn:oasis:names:tc:SAML:2.0:nameid-format:entity",
	"urn:oasis:names:tc:SAML:2.0:nameid-format:encrypted",
}

var consents = []string{
	"urn:oasis:names:tc:SAML:2.0:consent:unspecified", "urn:oasis:names:tc:SAML:2.0:consent:obtained",
	"urn:oasis:names:tc:SAML:2.0:consent:prior", "urn:oasis:names:tc:SAML:2.0:consent:current-implicit",
	"urn:oasis:names:tc:SAML:2.0:consent:current-explicit", "urn:oasis:names:tc:SAML:2.0:consent:unavailable",
	"urn:oasis:names:tc:SAML:2.0:consent:inapplicable",
}

var subStatuses = []string{SubStatusAuthnFailed, SubStatusInvalidAttrNameOrValue, SubStatusInvalidNameIDPolicy, SubStatusRequestDenied}

const (
	rootRequest  = "lightRequest"
	rootResponse = "lightResponse"
)

// Validate checks the request as ParseRequest does; MarshalRequest calls
// it, so Sésame never sends what it would refuse.
func (r *Request) Validate() error {
	v := validator{msg: rootRequest}
	v.id("id", r.ID)
	v.country("citizenCountryCode", r.CitizenCountryCode, true)
	v.text("issuer", r.Issuer, false)
	if r.LevelOfAssurance == "" {
		v.fail("levelOfAssurance", "missing (a notified level is required)")
	} else if LoARank(r.LevelOfAssurance) == 0 {
		v.fail("levelOfAssurance", fmt.Sprintf("%q is not a notified level (%s, %s or %s)", r.LevelOfAssurance, LoALow, LoASubstantial, LoAHigh))
	}
	for _, l := range r.NonNotifiedLoAs {
		v.text("levelOfAssurance", l, true)
		if strings.HasPrefix(l, LoAPrefix) {
			v.fail("levelOfAssurance", fmt.Sprintf("non-notified level %q uses the notified prefix %s", l, LoAPrefix))
		}
	}
	v.oneOf("nameIdFormat", r.NameIDFormat, nameIDFormats)
	v.text("providerName", r.ProviderName, false)
	v.oneOf("spType", r.SPType, []string{SPTypePublic, SPTypePrivate})
	v.country("spCountryCode", r.SPCountryCode, false)
	v.text("requesterId", r.RequesterID, false)
	v.text("relayState", r.RelayState, false)
	if len(r.RequestedAttributes) == 0 {
		v.fail("requestedAttributes", "no attribute requested")
	}
	v.attributes("requestedAttributes", r.RequestedAttributes, false)
	return v.err
}

// Validate checks the response as ParseResponse does; MarshalResponse
// calls it.
//
// A success must carry a subject and a level of assurance; whether the
// level is enough, and which attributes are needed, is the receiver's
// business (LoAAtLeast, Values).
func (r *Response) Validate() error {
	v := validator{msg: rootResponse}
	v.id("id", r.ID)
	v.id("inResponseToId", r.InResponseToID)
	v.oneOf("consent", r.Consent, consents)
	v.text("issuer", r.Issuer, true)
	if len(r.IPAddress) > 64 {
		v.fail("ipAddress", "longer than 64 characters")
	}
	v.text("relayState", r.RelayState, false)
	v.text("subject", r.Subject, !r.Status.Failure)
	v.oneOf("subjectNameIdFormat", r.SubjectNameIDFormat, nameIDFormats)
	v.text("levelOfAssurance", r.LevelOfAssurance, !r.Status.Failure)
	if strings.HasPrefix(r.LevelOfAssurance, LoAPrefix) && LoARank(r.LevelOfAssurance) == 0 {
		v.fail("levelOfAssurance", fmt.Sprintf("%q is under the notified prefix but is not a notified level", r.LevelOfAssurance))
	}
	s := r.Status
	if s.Failure {
		v.oneOf("status/statusCode", s.StatusCode, []string{StatusRequester, StatusResponder, StatusVersionMismatch})
		if s.StatusCode == "" {
			v.fail("status/statusCode", "missing on a failure")
		}
	} else if s.StatusCode != "" && s.StatusCode != StatusSuccess {
		v.fail("status/statusCode", fmt.Sprintf("%q with failure false", s.StatusCode))
	}
	v.oneOf("status/subStatusCode", s.SubStatusCode, subStatuses)
	v.text("status/statusMessage", s.StatusMessage, false)
	v.attributes("attributes", r.Attributes, true)
	return v.err
}

// validator collects the first error, naming the field.
type validator struct {
	msg string
	err error
}

func (v *validator) fail(field, reason string) {
	if v.err == nil {
		v.err = &FieldError{Message: v.msg, Field: field, Reason: reason}
	}
}

func (v *validator) id(field, s string) {
	if s == "" {
		v.fail(field, "missing")
	} else if err := ValidID(s); err != nil {
		v.fail(field, err.Error())
	}
}

func (v *validator) text(field, s string, required bool) {
	switch {
	case s == "" && required:
		v.fail(field, "missing")
	case len(s) > maxText:
		v.fail(field, fmt.Sprintf("longer than %d bytes", maxText))
	case strings.ContainsFunc(s, isControl):
		v.fail(field, "contains a control character")
	}
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func (v *validator) country(field, s string, required bool) {
	if s == "" {
		if required {
			v.fail(field, "missing")
		}
		return
	}
	if len(s) != 2 || s[0] < 'A' || s[0] > 'Z' || s[1] < 'A' || s[1] > 'Z' {
		v.fail(field, fmt.Sprintf("%q is not a two-letter upper-case country code", s))
	}
}

func (v *validator) oneOf(field, s string, allowed []string) {
	if s != "" && !contains(allowed, s) {
		v.fail(field, fmt.Sprintf("%q is not an allowed value", s))
	}
}

func (v *validator) attributes(field string, attrs []Attribute, needValues bool) {
	if len(attrs) > maxAttributes {
		v.fail(field, fmt.Sprintf("more than %d attributes", maxAttributes))
		return
	}
	seen := map[string]bool{}
	for i, a := range attrs {
		p := field + "/attribute[" + strconv.Itoa(i+1) + "]"
		switch {
		case a.Definition == "":
			v.fail(p+"/definition", "missing")
		case len(a.Definition) > maxText || !strings.Contains(a.Definition, ":") || strings.ContainsFunc(a.Definition, func(r rune) bool { return r <= ' ' || r == 0x7f }):
			v.fail(p+"/definition", fmt.Sprintf("%q is not a full attribute URI", truncate(a.Definition)))
		case seen[a.Definition]:
			v.fail(p+"/definition", fmt.Sprintf("%q repeated", a.Definition))
		}
		seen[a.Definition] = true
		if needValues && len(a.Values) == 0 {
			v.fail(p+"/value", "missing (an attribute returned needs a value)")
		}
		if len(a.Values) > maxValues {
			v.fail(p+"/value", fmt.Sprintf("more than %d values", maxValues))
		}
		for _, val := range a.Values {
			if len(val) > maxValue {
				v.fail(p+"/value", fmt.Sprintf("longer than %d bytes", maxValue))
			}
		}
	}
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// XML shapes, in the schemas' element order, for marshalling. Children
// carry no namespace of their own, so they inherit the root's default one
// (elementFormDefault="qualified").
type xmlRequest struct {
	XMLName            xml.Name    `xml:"http://cef.eidas.eu/LightRequest lightRequest"`
	CitizenCountryCode string      `xml:"citizenCountryCode"`
	ID                 string      `xml:"id"`
	Issuer             string      `xml:"issuer,omitempty"`
	LoA                []xmlLoA    `xml:"levelOfAssurance"`
	NameIDFormat       string      `xml:"nameIdFormat,omitempty"`
	ProviderName       string      `xml:"providerName,omitempty"`
	SPType             string      `xml:"spType,omitempty"`
	SPCountryCode      string      `xml:"spCountryCode,omitempty"`
	RequesterID        string      `xml:"requesterId,omitempty"`
	RelayState         string      `xml:"relayState,omitempty"`
	Attributes         []xmlAttrib `xml:"requestedAttributes>attribute"`
}

type xmlLoA struct {
	Type  string `xml:"type,attr,omitempty"`
	Value string `xml:",chardata"`
}

type xmlAttrib struct {
	Definition string   `xml:"definition"`
	Values     []string `xml:"value"`
}

type xmlResponse struct {
	XMLName             xml.Name  `xml:"http://cef.eidas.eu/LightResponse lightResponse"`
	ID                  string    `xml:"id"`
	InResponseToID      string    `xml:"inResponseToId"`
	Consent             string    `xml:"consent,omitempty"`
	Issuer              string    `xml:"issuer"`
	IPAddress           string    `xml:"ipAddress,omitempty"`
	RelayState          string    `xml:"relayState,omitempty"`
	Subject             string    `xml:"subject,omitempty"`
	SubjectNameIDFormat string    `xml:"subjectNameIdFormat,omitempty"`
	LevelOfAssurance    string    `xml:"levelOfAssurance,omitempty"`
	Status              xmlStatus `xml:"status"`
	// Attributes is a pointer-free wrapper so that an empty list still
	// writes <attributes></attributes>, which the schema requires.
	Attributes xmlAttribs `xml:"attributes"`
}

type xmlStatus struct {
	Failure       bool   `xml:"failure"`
	StatusCode    string `xml:"statusCode,omitempty"`
	SubStatusCode string `xml:"subStatusCode,omitempty"`
	StatusMessage string `xml:"statusMessage,omitempty"`
}

type xmlAttribs struct {
	Attribute []xmlAttrib `xml:"attribute"`
}

const xmlHeader = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` + "\n"

// MarshalRequest validates r and writes it as a LightRequest document.
func MarshalRequest(r *Request) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	x := xmlRequest{
		CitizenCountryCode: r.CitizenCountryCode, ID: r.ID, Issuer: r.Issuer,
		LoA:          []xmlLoA{{Type: LoATypeNotified, Value: r.LevelOfAssurance}},
		NameIDFormat: r.NameIDFormat, ProviderName: r.ProviderName, SPType: r.SPType,
		SPCountryCode: r.SPCountryCode, RequesterID: r.RequesterID, RelayState: r.RelayState,
		Attributes: toXMLAttribs(r.RequestedAttributes),
	}
	for _, l := range r.NonNotifiedLoAs {
		x.LoA = append(x.LoA, xmlLoA{Type: LoATypeNonNotified, Value: l})
	}
	return marshal(rootRequest, x)
}

// MarshalResponse validates r and writes it as a LightResponse document.
func MarshalResponse(r *Response) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	x := xmlResponse{
		ID: r.ID, InResponseToID: r.InResponseToID, Consent: r.Consent, Issuer: r.Issuer,
		IPAddress: r.IPAddress, RelayState: r.RelayState, Subject: r.Subject,
		SubjectNameIDFormat: r.SubjectNameIDFormat, LevelOfAssurance: r.LevelOfAssurance,
		Status:     xmlStatus{Failure: r.Status.Failure, StatusCode: r.Status.StatusCode, SubStatusCode: r.Status.SubStatusCode, StatusMessage: r.Status.StatusMessage},
		Attributes: xmlAttribs{Attribute: toXMLAttribs(r.Attributes)},
	}
	if !r.Status.Failure && x.Status.StatusCode == "" {
		x.Status.StatusCode = StatusSuccess
	}
	return marshal(rootResponse, x)
}

func marshal(root string, x any) ([]byte, error) {
	body, err := xml.MarshalIndent(x, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("light: marshal %s: %w", root, err)
	}
	var b bytes.Buffer
	b.WriteString(xmlHeader)
	b.Write(body)
	b.WriteByte('\n')
	if b.Len() > MaxMessageSize {
		return nil, &FieldError{Message: root, Reason: fmt.Sprintf("larger than %d bytes once marshalled", MaxMessageSize)}
	}
	return b.Bytes(), nil
}

func toXMLAttribs(attrs []Attribute) []xmlAttrib {
	out := make([]xmlAttrib, len(attrs))
	for i, a := range attrs {
		out[i] = xmlAttrib{Definition: a.Definition, Values: a.Values}
	}
	return out
}

var requestRules = map[string]rule{
	"citizenCountryCode": {required: true, max: 1}, "id": {required: true, max: 1}, "issuer": {max: 1},
	"levelOfAssurance": {required: true, max: 8}, "nameIdFormat": {max: 1}, "providerName": {max: 1},
	"spType": {max: 1}, "spCountryCode": {max: 1}, "requesterId": {max: 1}, "relayState": {max: 1},
	"requestedAttributes": {required: true, max: 1},
}

var responseRules = map[string]rule{
	"id": {required: true, max: 1}, "inResponseToId": {required: true, max: 1}, "consent": {max: 1},
	"issuer": {required: true, max: 1}, "ipAddress": {max: 1}, "relayState": {max: 1}, "subject": {max: 1},
	"subjectNameIdFormat": {max: 1}, "levelOfAssurance": {max: 1}, "status": {required: true, max: 1},
	"attributes": {required: true, max: 1},
}

var statusRules = map[string]rule{
	"failure": {max: 1}, "statusCode": {max: 1}, "subStatusCode": {max: 1}, "statusMessage": {max: 1},
}

var attributeRules = map[string]rule{"definition": {required: true, max: 1}, "value": {max: maxValues}}

// ParseRequest reads a LightRequest strictly: the exact namespace, no
// DOCTYPE, no unknown or repeated element, every required field present
// and sane. Text is trimmed of surrounding white space. Errors are
// *FieldError values naming the field.
func ParseRequest(data []byte) (*Request, error) {
	root, err := parseTree(data, NSRequest, rootRequest)
	if err != nil {
		return nil, err
	}
	const msg = rootRequest
	if err := checkAttrs(msg, root); err != nil {
		return nil, err
	}
	if err := checkChildren(msg, root, requestRules); err != nil {
		return nil, err
	}
	r := &Request{}
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{"citizenCountryCode", &r.CitizenCountryCode}, {"id", &r.ID}, {"issuer", &r.Issuer},
		{"nameIdFormat", &r.NameIDFormat}, {"providerName", &r.ProviderName}, {"spType", &r.SPType},
		{"spCountryCode", &r.SPCountryCode}, {"requesterId", &r.RequesterID}, {"relayState", &r.RelayState},
	} {
		if *f.dst, err = root.leaf(msg, f.name); err != nil {
			return nil, err
		}
	}
	for _, c := range root.children {
		if c.name != "levelOfAssurance" {
			continue
		}
		if err := c.leafOnly(msg, "type"); err != nil {
			return nil, err
		}
		typ, _ := c.attr("type")
		switch typ {
		case "", LoATypeNotified:
			if r.LevelOfAssurance != "" {
				return nil, &FieldError{Message: msg, Field: c.path, Reason: "a second notified level"}
			}
			if c.text == "" {
				return nil, &FieldError{Message: msg, Field: c.path, Reason: "empty"}
			}
			r.LevelOfAssurance = c.text
		case LoATypeNonNotified:
			r.NonNotifiedLoAs = append(r.NonNotifiedLoAs, c.text)
		default:
			return nil, &FieldError{Message: msg, Field: c.path, Reason: fmt.Sprintf("type %q is neither %s nor %s", typ, LoATypeNotified, LoATypeNonNotified)}
		}
	}
	if r.RequestedAttributes, err = parseAttributes(msg, root.child("requestedAttributes")); err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}

// ParseResponse reads a LightResponse as strictly as ParseRequest.
func ParseResponse(data []byte) (*Response, error) {
	root, err := parseTree(data, NSResponse, rootResponse)
	if err != nil {
		return nil, err
	}
	const msg = rootResponse
	if err := checkAttrs(msg, root); err != nil {
		return nil, err
	}
	if err := checkChildren(msg, root, responseRules); err != nil {
		return nil, err
	}
	r := &Response{}
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{"id", &r.ID}, {"inResponseToId", &r.InResponseToID}, {"consent", &r.Consent}, {"issuer", &r.Issuer},
		{"ipAddress", &r.IPAddress}, {"relayState", &r.RelayState}, {"subject", &r.Subject},
		{"subjectNameIdFormat", &r.SubjectNameIDFormat}, {"levelOfAssurance", &r.LevelOfAssurance},
	} {
		if *f.dst, err = root.leaf(msg, f.name); err != nil {
			return nil, err
		}
	}
	st := root.child("status")
	if err := checkAttrs(msg, st); err != nil {
		return nil, err
	}
	if err := checkChildren(msg, st, statusRules); err != nil {
		return nil, err
	}
	failure, err := st.leaf(msg, "failure")
	if err != nil {
		return nil, err
	}
	switch failure {
	case "true", "1":
		r.Status.Failure = true
	case "false", "0", "":
	default:
		return nil, &FieldError{Message: msg, Field: "status/failure", Reason: fmt.Sprintf("%q is not a boolean", truncate(failure))}
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"statusCode", &r.Status.StatusCode}, {"subStatusCode", &r.Status.SubStatusCode}, {"statusMessage", &r.Status.StatusMessage}} {
		if *f.dst, err = st.leaf(msg, f.name); err != nil {
			return nil, err
		}
	}
	if r.Attributes, err = parseAttributes(msg, root.child("attributes")); err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}

func parseAttributes(msg string, list *element) ([]Attribute, error) {
	if err := checkAttrs(msg, list); err != nil {
		return nil, err
	}
	if err := checkChildren(msg, list, map[string]rule{"attribute": {max: maxAttributes}}); err != nil {
		return nil, err
	}
	var out []Attribute
	for _, a := range list.children {
		if err := checkAttrs(msg, a); err != nil {
			return nil, err
		}
		if err := checkChildren(msg, a, attributeRules); err != nil {
			return nil, err
		}
		def, err := a.leaf(msg, "definition")
		if err != nil {
			return nil, err
		}
		attr := Attribute{Definition: def}
		for _, c := range a.children {
			if c.name != "value" {
				continue
			}
			if err := c.leafOnly(msg); err != nil {
				return nil, err
			}
			attr.Values = append(attr.Values, c.text)
		}
		out = append(out, attr)
	}
	return out, nil
}
