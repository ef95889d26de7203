package controlplane

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/sailpoint"
)

func TestStatusReplyEncoderMatchesJSON(t *testing.T) {
	typ := sailpoint.TypeVA
	now := time.Date(2026, 3, 4, 5, 6, 7, 89, time.UTC)
	desc := "d"
	full := sailpoint.StatusReply{Status: sailpoint.StatusNormal, Type: &typ, Timestamp: now, Body: sailpoint.ReplyBody{
		ID: "cli1", ClientID: "cli1", ClusterID: "pol1", ClusterJobCount: 2,
		Configuration: map[string]string{sailpoint.ConfigClusterType: "", sailpoint.ConfigPoolType: "AD", sailpoint.ConfigDebug: "false",
			sailpoint.ConfigHeartbeatInterval: "30", sailpoint.ConfigCookbook: "<&>", sailpoint.ConfigGMTOffset: "0"},
		ConnectorServices: []sailpoint.ConnectorService{{ID: "x", Name: "y", ConnectorFileUploadHistory: []sailpoint.ConnectorFileUpload{}}},
		Jobs: []sailpoint.Job{{UUID: "j1", Cookbook: "j1", State: sailpoint.JobPending, Type: sailpoint.JobTypeUpgrade, TargetID: "cli1",
			ManagedProcessConfiguration: map[string]sailpoint.ManagedProcess{"ad-agent": {Version: "1.1.0", Description: &desc,
				Artifact: &sailpoint.Artifact{Name: "AD", URL: "http://h/artifacts/AD?x=1&y=<2>", SHA256: "ab"}}},
			ExpiresAt: now.Add(time.Hour), Maintenance: &sailpoint.Maintenance{Window: "true"}, Sequence: 7},
			{UUID: "j2", State: sailpoint.JobCancelled, ManagedProcessConfiguration: map[string]sailpoint.ManagedProcess{}}},
		Queue:       &sailpoint.Queue{Name: "q", Region: "r"},
		Maintenance: &sailpoint.Maintenance{Window: "true", WindowStartTime: "a", WindowClusterTime: "b", WindowFinishTime: "c"},
		Warnings:    []string{"TYPE_MISMATCH: managed agent \"x\" has type \"ldap\"", "é\u2028\x01\xff"},
	}}
	tests := []struct {
		name string
		r    sailpoint.StatusReply
	}{
		{"the usual reply", sailpoint.StatusReply{Status: sailpoint.StatusNormal, Type: &typ, Timestamp: now, Body: sailpoint.ReplyBody{
			ID: "cli1", ClientID: "cli1", ClusterID: "pol1", Jobs: []sailpoint.Job{},
			Configuration:     map[string]string{sailpoint.ConfigScheduleUpgrade: "false", sailpoint.ConfigJobType: sailpoint.JobTypeUpgrade},
			ConnectorServices: []sailpoint.ConnectorService{}, Queue: &sailpoint.Queue{},
			Maintenance: &sailpoint.Maintenance{Window: "false", WindowClusterTime: "2026-03-04T05:06:07Z"}, Warnings: []string{}}}},
		{"jobs, warnings, escapes", full},
		{"nil everything", sailpoint.StatusReply{}},
		{"a time in another zone", sailpoint.StatusReply{Timestamp: now.In(time.FixedZone("x", -3*3600-1800))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := json.Marshal(tt.r)
			if err != nil {
				t.Fatal(err)
			}
			got, err := appendStatusReply(nil, &tt.r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("\ngot  %s\nwant %s", got, want)
			}
			rec := httptest.NewRecorder()
			writeStatusReply(rec, &tt.r)
			wrec := httptest.NewRecorder()
			writeJSON(wrec, 200, tt.r)
			if !bytes.Equal(rec.Body.Bytes(), wrec.Body.Bytes()) || rec.Code != wrec.Code || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("writeStatusReply differs from writeJSON: %d %s", rec.Code, rec.Body.Bytes())
			}
		})
	}
	// A time encoding/json refuses: the same error reply as writeJSON's.
	bad := sailpoint.StatusReply{Timestamp: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if _, err := appendStatusReply(nil, &bad); err == nil {
		t.Fatal("year 10000: no error")
	}
	rec, wrec := httptest.NewRecorder(), httptest.NewRecorder()
	writeStatusReply(rec, &bad)
	writeJSON(wrec, 200, bad)
	if rec.Code != wrec.Code || rec.Code != 500 {
		t.Fatalf("year 10000: status %d, writeJSON %d", rec.Code, wrec.Code)
	}
}
