package handlers

import (
	"github.com/zdm-io/zdm/domain"
)

// ListenIndex knows the proxy addresses of the registered clusters.
type ListenIndex interface {
	// ListenHolder returns the cluster other than except whose
	// proxy_listen contends with listen (domain.SameListen), and its
	// organization; "" if none.
	ListenHolder(listen, except string) (id, org string)
}

// CheckListensWith has registrations and updates refuse a proxy_listen
// another cluster's proxy has.
func (s *Service) CheckListensWith(l ListenIndex) { s.listens = l }

// freeListen refuses listen when another cluster than except has it; the
// holder is named to a caller of its organization (org).
func (s *Service) freeListen(listen, except, org string) error {
	if listen == "" || s.listens == nil {
		return nil
	}
	id, holderOrg := s.listens.ListenHolder(listen, except)
	if id == "" {
		return nil
	}
	if holderOrg != org {
		id = ""
	}
	return &domain.ListenTakenError{Listen: listen, Holder: id}
}
