package capability

// CachedCount exposes the size of a verifier's cache to the external tests.
func CachedCount(v *Verifier) int { return v.cached() }

// IndexLen exposes the number of indexed tokens to the external tests.
func IndexLen(s *Service) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.idx.len()
}
