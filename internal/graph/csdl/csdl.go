// Package csdl reads Microsoft Graph's CSDL metadata ($metadata) so tests can check that what the
// client sends and what the emulator answers use only names the real service defines.
package csdl

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// Metadata holds the structured types of the microsoft.graph namespace.
type Metadata struct {
	types   map[string]*structType
	actions map[string][]string // bound action name -> parameter names (without the binding one)
}

type structType struct {
	base  string
	open  bool
	props map[string]string // property or navigation property name -> type
}

type xmlSchema struct {
	Namespace string      `xml:"Namespace,attr"`
	Entity    []xmlType   `xml:"EntityType"`
	Complex   []xmlType   `xml:"ComplexType"`
	Actions   []xmlAction `xml:"Action"`
}

type xmlAction struct {
	Name   string    `xml:"Name,attr"`
	Params []xmlProp `xml:"Parameter"`
}

type xmlType struct {
	Name     string    `xml:"Name,attr"`
	BaseType string    `xml:"BaseType,attr"`
	OpenType bool      `xml:"OpenType,attr"`
	Props    []xmlProp `xml:"Property"`
	Navs     []xmlProp `xml:"NavigationProperty"`
}

type xmlProp struct {
	Name string `xml:"Name,attr"`
	Type string `xml:"Type,attr"`
}

// Read parses a CSDL document.
func Read(r io.Reader) (*Metadata, error) {
	var doc struct {
		Schemas []xmlSchema `xml:"DataServices>Schema"`
	}
	if err := xml.NewDecoder(r).Decode(&doc); err != nil {
		return nil, fmt.Errorf("csdl: %w", err)
	}
	m := &Metadata{types: map[string]*structType{}, actions: map[string][]string{}}
	for _, s := range doc.Schemas {
		if s.Namespace != "microsoft.graph" {
			continue
		}
		for _, t := range append(s.Entity, s.Complex...) {
			st := &structType{base: local(t.BaseType), open: t.OpenType, props: map[string]string{}}
			for _, p := range append(t.Props, t.Navs...) {
				st.props[p.Name] = local(p.Type)
			}
			m.types[t.Name] = st
		}
		for _, a := range s.Actions {
			if _, ok := m.actions[a.Name]; !ok {
				m.actions[a.Name] = []string{}
			}
			for _, p := range a.Params {
				if p.Name != "bindingParameter" {
					m.actions[a.Name] = append(m.actions[a.Name], p.Name)
				}
			}
		}
	}
	if len(m.types) == 0 {
		return nil, fmt.Errorf("csdl: no microsoft.graph types found")
	}
	return m, nil
}

// local strips "graph." or "microsoft.graph." and Collection(…).
func local(t string) string {
	t = strings.TrimSuffix(strings.TrimPrefix(t, "Collection("), ")")
	t = strings.TrimPrefix(t, "microsoft.graph.")
	return strings.TrimPrefix(t, "graph.")
}

// Property returns the type of a property of a type (following base types), and whether it exists.
func (m *Metadata) Property(typeName, prop string) (string, bool) {
	for t := m.types[typeName]; t != nil; t = m.types[t.base] {
		if ty, ok := t.props[prop]; ok {
			return ty, true
		}
	}
	return "", false
}

// ActionParams returns the parameter names of an action (empty for one that takes none), and
// whether any overload of that name exists.
func (m *Metadata) ActionParams(name string) ([]string, bool) {
	p, ok := m.actions[name]
	return p, ok
}

// Has reports whether the type exists.
func (m *Metadata) Has(typeName string) bool { return m.types[typeName] != nil }

// Check walks a JSON value (decoded into any) as an instance of typeName and returns every
// property name the metadata does not define, as "type.property". OData annotations (@…) are
// allowed anywhere.
func (m *Metadata) Check(typeName string, v any) []string {
	var bad []string
	m.check(typeName, v, &bad)
	return bad
}

func (m *Metadata) check(typeName string, v any, bad *[]string) {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			m.check(typeName, e, bad)
		}
	case map[string]any:
		// A derived type names itself (a fileAttachment among a message's attachments).
		if t, ok := x["@odata.type"].(string); ok && m.Has(local(strings.TrimPrefix(t, "#"))) {
			typeName = local(strings.TrimPrefix(t, "#"))
		}
		if !m.Has(typeName) {
			return // a primitive or enum typed value holding an object: not ours to judge
		}
		for k, val := range x {
			if strings.HasPrefix(k, "@") || strings.Contains(k, "@odata.") {
				continue
			}
			ty, ok := m.Property(typeName, k)
			if !ok {
				*bad = append(*bad, typeName+"."+k)
				continue
			}
			m.check(ty, val, bad)
		}
	}
}
