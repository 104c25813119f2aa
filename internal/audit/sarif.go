package audit

import (
	"encoding/json"
	"io"
	"time"
)

// SARIF 2.1.0 (OASIS): one run, pacswatch's checks as the tool's rules, one result per check.
// A network tool has no source files: each result's location is the stable synthetic URI
// pacs/HOST_PORT/CHECK_ID (SPEC audit), so that a code-scanning service follows a finding from
// one audit to the next.
const (
	sarifSchema  = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
	sarifInfoURI = "https://github.com/pacswatch/pacswatch"
)

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool        sarifTool         `json:"tool"`
	Invocations []sarifInvocation `json:"invocations"`
	Results     []sarifResult     `json:"results"`
	Properties  map[string]string `json:"properties"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifRule struct {
	ID               string            `json:"id"`
	ShortDescription sarifText         `json:"shortDescription"`
	FullDescription  sarifText         `json:"fullDescription"`
	DefaultConfig    sarifRuleConfig   `json:"defaultConfiguration"`
	Properties       sarifRuleProperty `json:"properties"`
}

type sarifRuleConfig struct {
	Level string `json:"level"`
}

type sarifRuleProperty struct {
	Tags             []string `json:"tags"`
	SecuritySeverity string   `json:"security-severity"` // read by GitHub code scanning
}

type sarifInvocation struct {
	ExecutionSuccessful bool   `json:"executionSuccessful"`
	EndTimeUTC          string `json:"endTimeUtc"`
}

type sarifResult struct {
	RuleID              string            `json:"ruleId"`
	RuleIndex           int               `json:"ruleIndex"`
	Kind                string            `json:"kind"`
	Level               string            `json:"level"`
	Message             sarifText         `json:"message"`
	Locations           []sarifLocation   `json:"locations"`
	PartialFingerprints map[string]string `json:"partialFingerprints"`
	Properties          map[string]any    `json:"properties,omitempty"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysical `json:"physicalLocation"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

// sarifLevel maps a severity to a SARIF level (for failed checks; others are "none").
func sarifLevel(s Severity) string {
	switch s {
	case Critical, High:
		return "error"
	case Medium:
		return "warning"
	}
	return "note"
}

// securitySeverity is the CVSS-like score GitHub code scanning reads from a rule.
var securitySeverity = map[Severity]string{Critical: "9.5", High: "8.0", Medium: "5.5", Low: "3.0", Info: "0.0"}

// Location returns the synthetic location of check id on the report's system.
func (r *Report) Location(id string) string { return "pacs/" + r.slug() + "/" + id }

func (r *Report) writeSARIF(w io.Writer) error {
	run := sarifRun{
		Tool:        sarifTool{Driver: sarifDriver{Name: "pacswatch", Version: r.Pacswatch, InformationURI: sarifInfoURI}},
		Invocations: []sarifInvocation{{ExecutionSuccessful: true, EndTimeUTC: r.Time.UTC().Format(time.RFC3339)}},
		Results:     []sarifResult{},
		Properties:  map[string]string{"target": r.Target, "product": r.Product.Name, "productBasis": r.Product.Basis},
	}
	index := map[string]int{}
	for i, c := range Checks {
		index[c.ID] = i
		run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, sarifRule{
			ID: c.ID, ShortDescription: sarifText{c.Title}, FullDescription: sarifText{c.Title + ": " + c.Risk + "."},
			DefaultConfig: sarifRuleConfig{sarifLevel(c.Severity)},
			Properties:    sarifRuleProperty{Tags: []string{"security", "dicom", "pacs"}, SecuritySeverity: securitySeverity[c.Severity]},
		})
	}
	for _, f := range r.Checks {
		res := sarifResult{
			RuleID: f.ID, RuleIndex: index[f.ID], Kind: "pass", Level: "none", Message: sarifText{f.Evidence},
			Locations:           []sarifLocation{{sarifPhysical{sarifArtifact{r.Location(f.ID)}}}},
			PartialFingerprints: map[string]string{"pacswatchLocation/v1": r.Location(f.ID)},
		}
		switch f.Status {
		case Fail:
			res.Kind, res.Level = "fail", sarifLevel(f.Severity)
			if rm := f.Remediation; rm != nil {
				res.Message.Text += ". What to change: " + rm.Text
				res.Properties = map[string]any{"remediation": rm}
			}
		case Skip:
			res.Kind = "notApplicable"
		}
		run.Results = append(run.Results, res)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(sarifLog{Schema: sarifSchema, Version: "2.1.0", Runs: []sarifRun{run}})
}
