package light

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

func sampleRequest() *Request {
	return &Request{
		ID: NewID(), Issuer: "https://bridge.example/eidas/connector", CitizenCountryCode: "BE",
		LevelOfAssurance: LoASubstantial, NonNotifiedLoAs: []string{"http://loa.example.be/card"},
		NameIDFormat: NameIDUnspecified, ProviderName: "Sésame", SPType: SPTypePublic, SPCountryCode: "FR",
		RelayState: "relay-é&<>\"'", RequestedAttributes: []Attribute{
			{Definition: AttrPersonIdentifier}, {Definition: AttrCurrentGivenName}, {Definition: AttrCurrentFamilyName},
			{Definition: AttrDateOfBirth}, {Definition: AttrCurrentAddress, Values: []string{"PGFkZHJlc3M+"}},
		},
	}
}

func sampleResponse() *Response {
	return &Response{
		ID: NewID(), InResponseToID: NewID(), Issuer: "http://node.example/EidasNode", IPAddress: "192.0.2.1",
		RelayState: "r1", Subject: "BE/FR/12345", SubjectNameIDFormat: NameIDPersistent, LevelOfAssurance: LoAHigh,
		Status: Status{StatusCode: StatusSuccess},
		Attributes: []Attribute{
			{Definition: AttrPersonIdentifier, Values: []string{"BE/FR/12345"}},
			{Definition: AttrCurrentGivenName, Values: []string{"Zoë", "Anaïs"}},
			{Definition: AttrCurrentFamilyName, Values: []string{"Ødegård"}},
			{Definition: AttrPlaceOfBirth, Values: []string{"Liège & <environs>"}},
		},
	}
}

func TestRequestRoundTrip(t *testing.T) {
	r := sampleRequest()
	b, err := MarshalRequest(r)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{
		`<?xml version="1.0" encoding="UTF-8" standalone="yes"?>`,
		`<lightRequest xmlns="http://cef.eidas.eu/LightRequest">`,
		`<levelOfAssurance type="notified">http://eidas.europa.eu/LoA/substantial</levelOfAssurance>`,
		`<levelOfAssurance type="nonNotified">http://loa.example.be/card</levelOfAssurance>`,
		`<definition>http://eidas.europa.eu/attributes/naturalperson/PersonIdentifier</definition>`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("marshalled request lacks %s:\n%s", want, s)
		}
	}
	// Schema order: citizenCountryCode first, requestedAttributes last.
	if strings.Index(s, "<citizenCountryCode>") > strings.Index(s, "<id>") || strings.Index(s, "<relayState>") > strings.Index(s, "<requestedAttributes>") {
		t.Errorf("elements out of schema order:\n%s", s)
	}
	got, err := ParseRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, r)
	}
	if !got.Requests(AttrDateOfBirth) || got.Requests(AttrGender) {
		t.Error("Requests")
	}
}

func TestResponseRoundTrip(t *testing.T) {
	for _, r := range []*Response{sampleResponse(), {
		ID: "_f", InResponseToID: "_r", Issuer: "node", RelayState: "r",
		Status: Status{Failure: true, StatusCode: StatusResponder, SubStatusCode: SubStatusAuthnFailed, StatusMessage: "cancelled"},
	}} {
		b, err := MarshalResponse(r)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `<lightResponse xmlns="http://cef.eidas.eu/LightResponse">`) || !strings.Contains(string(b), "<attributes>") {
			t.Errorf("marshalled response:\n%s", b)
		}
		got, err := ParseResponse(b)
		if err != nil {
			t.Fatalf("%v\n%s", err, b)
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, r)
		}
	}
	r := sampleResponse()
	if r.Value(AttrCurrentGivenName) != "Zoë" || len(r.Values(AttrCurrentGivenName)) != 2 || r.Value(AttrGender) != "" {
		t.Error("Value/Values")
	}
}

// A success written without statusCode gets Success, as the node expects.
func TestResponseDefaultsSuccessCode(t *testing.T) {
	r := sampleResponse()
	r.Status.StatusCode = ""
	b, err := MarshalResponse(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "<statusCode>"+StatusSuccess+"</statusCode>") {
		t.Errorf("no Success code:\n%s", b)
	}
}

func TestParseSamples(t *testing.T) {
	b, err := os.ReadFile("testdata/request.xml")
	if err != nil {
		t.Fatal(err)
	}
	req, err := ParseRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	if req.CitizenCountryCode != "BE" || req.LevelOfAssurance != LoASubstantial || req.SPCountryCode != "FR" ||
		len(req.RequestedAttributes) != 4 || req.ProviderName != "Sésame" || len(req.NonNotifiedLoAs) != 1 {
		t.Errorf("request sample: %+v", req)
	}
	b, err = os.ReadFile("testdata/response.xml")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ParseResponse(b)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Subject != "BE/FR/85.07.30-033.28" || resp.Value(AttrCurrentFamilyName) != "Van den Brœck" || resp.Status.Failure {
		t.Errorf("response sample: %+v", resp)
	}
	b, err = os.ReadFile("testdata/response_failure.xml")
	if err != nil {
		t.Fatal(err)
	}
	resp, err = ParseResponse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Status.Failure || resp.Status.SubStatusCode != SubStatusAuthnFailed || len(resp.Attributes) != 0 {
		t.Errorf("failure sample: %+v", resp)
	}
}

const reqHead = `<lightRequest xmlns="http://cef.eidas.eu/LightRequest">`
const reqBody = `<citizenCountryCode>BE</citizenCountryCode><id>_1</id>` +
	`<levelOfAssurance>http://eidas.europa.eu/LoA/low</levelOfAssurance>` +
	`<requestedAttributes><attribute><definition>http://eidas.europa.eu/attributes/naturalperson/PersonIdentifier</definition></attribute></requestedAttributes>`

func TestParseRequestRefuses(t *testing.T) {
	if _, err := ParseRequest([]byte(reqHead + reqBody + `</lightRequest>`)); err != nil {
		t.Fatalf("minimal request refused: %v", err)
	}
	cases := []struct {
		name, doc, field string
	}{
		{"empty", ``, ""},
		{"not XML", `hello`, ""},
		{"DOCTYPE", `<?xml version="1.0"?><!DOCTYPE lightRequest [<!ENTITY x "boom">]>` + reqHead + reqBody + `</lightRequest>`, ""},
		{"undeclared entity", reqHead + `<citizenCountryCode>&x;</citizenCountryCode></lightRequest>`, ""},
		{"processing instruction", reqHead + `<?php echo 1 ?>` + reqBody + `</lightRequest>`, ""},
		{"no namespace", `<lightRequest>` + reqBody + `</lightRequest>`, ""},
		{"response namespace", `<lightRequest xmlns="http://cef.eidas.eu/LightResponse">` + reqBody + `</lightRequest>`, ""},
		{"wrong root", `<lightResponse xmlns="http://cef.eidas.eu/LightRequest">` + reqBody + `</lightResponse>`, ""},
		{"child in another namespace", reqHead + `<x:id xmlns:x="urn:other">_2</x:id>` + reqBody + `</lightRequest>`, "id"},
		{"unknown element", reqHead + reqBody + `<favouriteColour>blue</favouriteColour></lightRequest>`, "favouriteColour"},
		{"repeated id", reqHead + reqBody + `<id>_2</id></lightRequest>`, "id[2]"},
		{"missing id", reqHead + `<citizenCountryCode>BE</citizenCountryCode><levelOfAssurance>http://eidas.europa.eu/LoA/low</levelOfAssurance><requestedAttributes><attribute><definition>urn:a</definition></attribute></requestedAttributes></lightRequest>`, "id"},
		{"missing attributes", reqHead + `<citizenCountryCode>BE</citizenCountryCode><id>_1</id><levelOfAssurance>http://eidas.europa.eu/LoA/low</levelOfAssurance></lightRequest>`, "requestedAttributes"},
		{"no attribute", reqHead + `<citizenCountryCode>BE</citizenCountryCode><id>_1</id><levelOfAssurance>http://eidas.europa.eu/LoA/low</levelOfAssurance><requestedAttributes/></lightRequest>`, "requestedAttributes"},
		{"id with pipe", strings.Replace(reqHead+reqBody, "<id>_1", "<id>_1|x", 1) + `</lightRequest>`, "id"},
		{"lower-case country", strings.Replace(reqHead+reqBody, ">BE<", ">be<", 1) + `</lightRequest>`, "citizenCountryCode"},
		{"unknown LoA", strings.Replace(reqHead+reqBody, "LoA/low", "LoA/medium", 1) + `</lightRequest>`, "levelOfAssurance"},
		{"two notified LoAs", reqHead + reqBody + `<levelOfAssurance type="notified">http://eidas.europa.eu/LoA/high</levelOfAssurance></lightRequest>`, "levelOfAssurance[2]"},
		{"bad LoA type", strings.Replace(reqHead+reqBody, "<levelOfAssurance>", `<levelOfAssurance type="both">`, 1) + `</lightRequest>`, "levelOfAssurance"},
		{"non-notified under notified prefix", reqHead + reqBody + `<levelOfAssurance type="nonNotified">http://eidas.europa.eu/LoA/other</levelOfAssurance></lightRequest>`, "levelOfAssurance"},
		{"unknown attribute on id", strings.Replace(reqHead+reqBody, "<id>", `<id evil="1">`, 1) + `</lightRequest>`, "id"},
		{"bad spType", reqHead + reqBody + `<spType>secret</spType></lightRequest>`, "spType"},
		{"bad nameIdFormat", reqHead + reqBody + `<nameIdFormat>urn:mine</nameIdFormat></lightRequest>`, "nameIdFormat"},
		{"text beside elements", reqHead + `loose text` + reqBody + `</lightRequest>`, ""},
		{"element inside a leaf", strings.Replace(reqHead+reqBody, "<id>_1</id>", "<id><b>_1</b></id>", 1) + `</lightRequest>`, "id/b"},
		{"too deep", strings.Replace(reqHead+reqBody, "</definition>", "</definition><value><deeper/></value>", 1) + `</lightRequest>`, "requestedAttributes/attribute[1]/value"},
		{"definition not a URI", strings.Replace(reqHead+reqBody, "http://eidas.europa.eu/attributes/naturalperson/PersonIdentifier", "PersonIdentifier", 1) + `</lightRequest>`, "requestedAttributes/attribute[1]/definition"},
		{"repeated definition", strings.Replace(reqHead+reqBody, "</requestedAttributes>", "<attribute><definition>http://eidas.europa.eu/attributes/naturalperson/PersonIdentifier</definition></attribute></requestedAttributes>", 1) + `</lightRequest>`, "requestedAttributes/attribute[2]/definition"},
		{"attribute without definition", strings.Replace(reqHead+reqBody, "</requestedAttributes>", "<attribute><value>x</value></attribute></requestedAttributes>", 1) + `</lightRequest>`, "requestedAttributes/attribute[2]/definition"},
		{"content after root", reqHead + reqBody + `</lightRequest><lightRequest/>`, ""},
		{"unclosed", reqHead + reqBody, ""},
		{"other encoding", `<?xml version="1.0" encoding="ISO-8859-1"?>` + reqHead + reqBody + `</lightRequest>`, ""},
		{"too large", reqHead + reqBody + `<!--` + strings.Repeat("x", MaxMessageSize) + `--></lightRequest>`, ""},
		{"control character", strings.Replace(reqHead+reqBody, "</citizenCountryCode>", "</citizenCountryCode><relayState>a&#x1;b</relayState>", 1) + `</lightRequest>`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := ParseRequest([]byte(c.doc))
			if err == nil {
				t.Fatalf("accepted: %+v", r)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || !errors.Is(err, ErrMalformed) {
				t.Fatalf("err %T %v is not a *FieldError wrapping ErrMalformed", err, err)
			}
			if c.field != "" && fe.Field != c.field {
				t.Errorf("field %q, want %q (%v)", fe.Field, c.field, err)
			}
			if fe.Message != "lightRequest" {
				t.Errorf("message %q", fe.Message)
			}
		})
	}
}

const respHead = `<lightResponse xmlns="http://cef.eidas.eu/LightResponse">`
const respIDs = `<id>_r</id><inResponseToId>_q</inResponseToId><issuer>node</issuer>`
const respOK = `<subject>BE/FR/1</subject><levelOfAssurance>http://eidas.europa.eu/LoA/low</levelOfAssurance>` +
	`<status><failure>false</failure><statusCode>urn:oasis:names:tc:SAML:2.0:status:Success</statusCode></status>` +
	`<attributes><attribute><definition>http://eidas.europa.eu/attributes/naturalperson/PersonIdentifier</definition><value>BE/FR/1</value></attribute></attributes>`

func TestParseResponseRefuses(t *testing.T) {
	if _, err := ParseResponse([]byte(respHead + respIDs + respOK + `</lightResponse>`)); err != nil {
		t.Fatalf("minimal response refused: %v", err)
	}
	fail := `<status><failure>true</failure><statusCode>urn:oasis:names:tc:SAML:2.0:status:Requester</statusCode></status><attributes/>`
	if _, err := ParseResponse([]byte(respHead + respIDs + fail + `</lightResponse>`)); err != nil {
		t.Fatalf("minimal failure refused: %v", err)
	}
	cases := []struct {
		name, doc, field string
	}{
		{"request namespace", `<lightResponse xmlns="http://cef.eidas.eu/LightRequest">` + respIDs + respOK + `</lightResponse>`, ""},
		{"DOCTYPE", `<!DOCTYPE lightResponse SYSTEM "file:///etc/passwd">` + respHead + respIDs + respOK + `</lightResponse>`, ""},
		{"missing inResponseToId", respHead + `<id>_r</id><issuer>node</issuer>` + respOK + `</lightResponse>`, "inResponseToId"},
		{"missing issuer", respHead + `<id>_r</id><inResponseToId>_q</inResponseToId>` + respOK + `</lightResponse>`, "issuer"},
		{"missing status", respHead + respIDs + `<subject>s</subject><levelOfAssurance>http://eidas.europa.eu/LoA/low</levelOfAssurance><attributes/></lightResponse>`, "status"},
		{"missing attributes", respHead + respIDs + fail[:strings.Index(fail, "<attributes/>")] + `</lightResponse>`, "attributes"},
		{"success without subject", respHead + respIDs + strings.Replace(respOK, "<subject>BE/FR/1</subject>", "", 1) + `</lightResponse>`, "subject"},
		{"success without LoA", respHead + respIDs + strings.Replace(respOK, "<levelOfAssurance>http://eidas.europa.eu/LoA/low</levelOfAssurance>", "", 1) + `</lightResponse>`, "levelOfAssurance"},
		{"bogus notified LoA", respHead + respIDs + strings.Replace(respOK, "LoA/low", "LoA/lowest", 1) + `</lightResponse>`, "levelOfAssurance"},
		{"failure without code", respHead + respIDs + `<status><failure>true</failure></status><attributes/></lightResponse>`, "status/statusCode"},
		{"failure with Success", respHead + respIDs + `<status><failure>true</failure><statusCode>urn:oasis:names:tc:SAML:2.0:status:Success</statusCode></status><attributes/></lightResponse>`, "status/statusCode"},
		{"success with Requester", respHead + respIDs + strings.Replace(respOK, "status:Success", "status:Requester", 1) + `</lightResponse>`, "status/statusCode"},
		{"failure not boolean", respHead + respIDs + strings.Replace(respOK, "<failure>false", "<failure>nope", 1) + `</lightResponse>`, "status/failure"},
		{"unknown sub-status", respHead + respIDs + `<status><failure>true</failure><statusCode>urn:oasis:names:tc:SAML:2.0:status:Requester</statusCode><subStatusCode>urn:x</subStatusCode></status><attributes/></lightResponse>`, "status/subStatusCode"},
		{"unknown status child", respHead + respIDs + strings.Replace(respOK, "</status>", "<why>x</why></status>", 1) + `</lightResponse>`, "status/why"},
		{"attribute without value", respHead + respIDs + strings.Replace(respOK, "<value>BE/FR/1</value>", "", 1) + `</lightResponse>`, "attributes/attribute[1]/value"},
		{"bad inResponseToId", respHead + `<id>_r</id><inResponseToId>a b</inResponseToId><issuer>node</issuer>` + respOK + `</lightResponse>`, "inResponseToId"},
		{"repeated subject", respHead + respIDs + `<subject>x</subject>` + respOK + `</lightResponse>`, "subject[2]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := ParseResponse([]byte(c.doc))
			if err == nil {
				t.Fatalf("accepted: %+v", r)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("err %T %v is not a *FieldError", err, err)
			}
			if c.field != "" && fe.Field != c.field {
				t.Errorf("field %q, want %q (%v)", fe.Field, c.field, err)
			}
		})
	}
}

// Marshal refuses what Parse would: Sésame never writes a message the
// other side must refuse.
func TestMarshalValidates(t *testing.T) {
	r := sampleRequest()
	r.CitizenCountryCode = ""
	if _, err := MarshalRequest(r); err == nil || !strings.Contains(err.Error(), "citizenCountryCode") {
		t.Errorf("MarshalRequest without country: %v", err)
	}
	s := sampleResponse()
	s.ID = "has space"
	if _, err := MarshalResponse(s); err == nil || !strings.Contains(err.Error(), "id") {
		t.Errorf("MarshalResponse bad id: %v", err)
	}
	s = sampleResponse()
	s.Attributes[0].Values[0] = strings.Repeat("x", maxValue+1)
	if _, err := MarshalResponse(s); err == nil {
		t.Error("MarshalResponse accepted an oversized value")
	}
}

func TestLoA(t *testing.T) {
	if !LoAAtLeast(LoAHigh, LoASubstantial) || !LoAAtLeast(LoALow, LoALow) || LoAAtLeast(LoALow, LoASubstantial) ||
		LoAAtLeast("http://other/loa", LoALow) || LoAAtLeast(LoAHigh, "x") {
		t.Error("LoAAtLeast")
	}
}
