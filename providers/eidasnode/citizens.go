package eidasnode

import (
	"encoding/base64"
	"sort"

	"github.com/sesame-id/sesame/internal/eidas/light"
)

// Citizen is a test citizen of the demo foreign IdPs. PersonIdentifier
// follows the eIDAS form "<citizen country>/<SP country>/<id>", the SP
// country being FR: these citizens log in to French services.
type Citizen struct {
	PersonIdentifier string
	GivenName        string
	FamilyName       string
	DateOfBirth      string // YYYY-MM-DD
	// Gender is an eIDAS value: Male, Female or Unspecified.
	Gender       string
	PlaceOfBirth string
	BirthName    string
	// Address is a plain one-line address; it is sent base64-encoded as
	// the eIDAS CurrentAddress type wants.
	Address string
}

// Countries are the demo foreign countries, with their names; CB is the
// EC's test country ("Mock Node" at FranceConnect).
var Countries = map[string]string{
	"CB": "Mock Node (CB)",
	"BE": "Belgique / België",
	"DE": "Deutschland",
}

// citizens are the test citizens by country. Names carry the letters a
// bridge must keep intact (ë, œ, ü, ß, ø, ł, ř, í).
var citizens = map[string][]Citizen{
	"CB": {
		{PersonIdentifier: "CB/FR/12345", GivenName: "Anaïs Sofía", FamilyName: "Ødegård García", DateOfBirth: "1982-03-04",
			Gender: "Female", PlaceOfBirth: "Testville", Address: "1 Mock Street, 9999 Testville"},
		{PersonIdentifier: "CB/FR/67890", GivenName: "Łukasz", FamilyName: "Dvořák", DateOfBirth: "1979-11-25",
			Gender: "Male", PlaceOfBirth: "Mockburg"},
	},
	"BE": {
		{PersonIdentifier: "BE/FR/85073003328", GivenName: "Zoë Élise", FamilyName: "Van den Brœck", DateOfBirth: "1985-07-30",
			Gender: "Female", PlaceOfBirth: "Liège", Address: "Rue de la Loi 16, 1000 Bruxelles"},
		{PersonIdentifier: "BE/FR/90021512345", GivenName: "Maël", FamilyName: "Dupont-Lefèvre", DateOfBirth: "1990-02-15",
			Gender: "Male", PlaceOfBirth: "Bruxelles"},
	},
	"DE": {
		{PersonIdentifier: "DE/FR/T22000129", GivenName: "Jürgen", FamilyName: "Müller-Lüdenscheidt", DateOfBirth: "1964-08-12",
			Gender: "Male", PlaceOfBirth: "Köln", BirthName: "Schäfer"},
		{PersonIdentifier: "DE/FR/L01X00T47", GivenName: "Grete", FamilyName: "Straßburger", DateOfBirth: "2001-12-31",
			Gender: "Unspecified", PlaceOfBirth: "Görlitz", Address: "Unter den Linden 77, 10117 Berlin"},
	},
}

// CitizensOf returns the test citizens of country (nil if none).
func CitizensOf(country string) []Citizen { return citizens[country] }

func countryCodes() []string {
	out := make([]string, 0, len(Countries))
	for c := range Countries {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

func findCitizen(country, id string) (Citizen, bool) {
	for _, c := range citizens[country] {
		if c.PersonIdentifier == id {
			return c, true
		}
	}
	return Citizen{}, false
}

// attributes returns the citizen's attributes that req asks for, always
// with PersonIdentifier (every eIDAS answer carries it).
func (c Citizen) attributes(req *light.Request) []light.Attribute {
	have := []light.Attribute{
		{Definition: light.AttrPersonIdentifier, Values: []string{c.PersonIdentifier}},
		{Definition: light.AttrCurrentGivenName, Values: []string{c.GivenName}},
		{Definition: light.AttrCurrentFamilyName, Values: []string{c.FamilyName}},
		{Definition: light.AttrDateOfBirth, Values: []string{c.DateOfBirth}},
		{Definition: light.AttrGender, Values: []string{c.Gender}},
		{Definition: light.AttrPlaceOfBirth, Values: []string{c.PlaceOfBirth}},
	}
	if c.BirthName != "" {
		have = append(have, light.Attribute{Definition: light.AttrBirthName, Values: []string{c.BirthName}})
	}
	if c.Address != "" {
		addr := "<eidas:FullCvaddress>" + c.Address + "</eidas:FullCvaddress>"
		have = append(have, light.Attribute{Definition: light.AttrCurrentAddress, Values: []string{base64.StdEncoding.EncodeToString([]byte(addr))}})
	}
	var out []light.Attribute
	for _, a := range have {
		if a.Definition == light.AttrPersonIdentifier || req.Requests(a.Definition) {
			out = append(out, a)
		}
	}
	return out
}
