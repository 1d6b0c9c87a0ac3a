package learn

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// The client asks for JSON, but Learn's documented default is XML and its own
// samples are XML (docs/learn-api.md, "Formats"), so an XML answer to a
// non-paged read is decoded too rather than refused.

// maxXMLAnswerBytes bounds an XML answer. Go's decoder hands an element
// over with all its attributes parsed, at some 45 times their size, and
// Learn's XML answers (one object, a few field definitions) have none and
// are a few kilobytes.
const maxXMLAnswerBytes = 256 << 10

// decodeXML reads an XML answer into out: *Department (<department>),
// *User (<userProfile>), *[]Department (every <department>) or *[]FieldInfo
// (every <userFieldInfo>), whether wrapped in <response> or not.
func decodeXML(b []byte, out any) error {
	switch o := out.(type) {
	case *Department:
		return xmlFirst(b, "department", o)
	case *User:
		return xmlFirst(b, "userProfile", o)
	case *[]Department:
		return xmlEach(b, "department", appendDecoded(o))
	case *[]FieldInfo:
		return xmlEach(b, "userFieldInfo", appendDecoded(o))
	}
	return fmt.Errorf("no XML form for %T", out)
}

// appendDecoded decodes each element it is given into a T appended to out.
func appendDecoded[T any](out *[]T) func(*xml.Decoder, *xml.StartElement) error {
	return func(dec *xml.Decoder, se *xml.StartElement) error {
		var v T
		if err := dec.DecodeElement(&v, se); err != nil {
			return err
		}
		*out = append(*out, v)
		return nil
	}
}

var errNoElement = errors.New("element not found")

// xmlFirst decodes the first element named name into out.
func xmlFirst(b []byte, name string, out any) error {
	found := false
	err := xmlEach(b, name, func(dec *xml.Decoder, se *xml.StartElement) error {
		found = true
		if err := dec.DecodeElement(out, se); err != nil {
			return err
		}
		return io.EOF // stop
	})
	if errors.Is(err, io.EOF) {
		err = nil
	}
	if err == nil && !found {
		return fmt.Errorf("<%s>: %w", name, errNoElement)
	}
	return err
}

// xmlEach calls fn at every element named name, at any depth, not looking
// inside the ones it hands over.
func xmlEach(b []byte, name string, fn func(*xml.Decoder, *xml.StartElement) error) error {
	dec := xml.NewDecoder(bytes.NewReader(b))
	depth := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Local == name {
				if err := fn(dec, &t); err != nil {
					return err
				}
				continue
			}
			if depth++; depth > maxXMLDepth {
				return errXMLDepth
			}
		case xml.EndElement:
			depth--
		}
	}
}

// maxXMLDepth bounds the nesting of an XML answer: Learn's go a few levels
// deep, and the decoder keeps a record of every open element, so the
// 256 KiB of nested ones a hostile server may send cost some 20 MB per
// answer, in as many creates at once as the writes run in parallel.
const maxXMLDepth = 64

var errXMLDepth = fmt.Errorf("nested deeper than %d elements", maxXMLDepth)

// xmlID reads the ID a create answers in XML: <response>UUID</response>, or
// the created object with its ID in an element named key.
func xmlID(b []byte, key string) string {
	dec := xml.NewDecoder(bytes.NewReader(b))
	var text strings.Builder
	depth, children, root := 0, false, ""
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Local == key {
				var v string
				if dec.DecodeElement(&v, &t) == nil {
					return strings.TrimSpace(v)
				}
				return ""
			}
			if depth++; depth > maxXMLDepth {
				return ""
			}
			if depth == 1 {
				root = t.Name.Local
			}
			if depth > 1 {
				children = true
			}
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 1 {
				text.Write(t)
			}
		}
	}
	id := strings.TrimSpace(text.String())
	if children || root != "response" || strings.ContainsAny(id, "<>{} \n\t\"") {
		return ""
	}
	return id
}
