package cluster

// SetKeys installs a new gossip keyring from the key file: every key is
// accepted for decryption, the first is used for encryption, keys no longer
// listed are removed. Rotation: add the new key as a second line and reload
// every agent; move it first and reload; remove the old line and reload.
func (c *Cluster) SetKeys(keys [][]byte) error {
	kr := c.keyring
	if kr == nil || len(keys) == 0 {
		return nil
	}
	for _, k := range keys {
		if err := kr.AddKey(k); err != nil {
			return err
		}
	}
	if err := kr.UseKey(keys[0]); err != nil {
		return err
	}
	want := map[string]bool{}
	for _, k := range keys {
		want[string(k)] = true
	}
	for _, k := range kr.GetKeys() {
		if !want[string(k)] {
			if err := kr.RemoveKey(k); err != nil {
				return err
			}
		}
	}
	return nil
}
