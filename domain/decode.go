package domain

import (
	"encoding/json"
	"fmt"
)

// DecodeEvent turns a stored type name and JSON body back into an event.
func DecodeEvent(typ string, data []byte) (Event, error) {
	switch typ {
	case TypeMigrationRequested:
		return decodeAs[MigrationRequested](typ, data)
	case TypeLocked:
		return decodeAs[Locked](typ, data)
	case TypeProvisioningStarted:
		return decodeAs[ProvisioningStarted](typ, data)
	case TypeTargetProvisioned:
		return decodeAs[TargetProvisioned](typ, data)
	case TypeCopyStarted:
		return decodeAs[CopyStarted](typ, data)
	case TypeBulkCopyProgressed:
		return decodeAs[BulkCopyProgressed](typ, data)
	case TypeBulkCopied:
		return decodeAs[BulkCopied](typ, data)
	case TypeLagSampled:
		return decodeAs[LagSampled](typ, data)
	case TypeLagThresholdReached:
		return decodeAs[LagThresholdReached](typ, data)
	case TypeVerified:
		return decodeAs[Verified](typ, data)
	case TypeSyncStopped:
		return decodeAs[SyncStopped](typ, data)
	case TypeSwitchedOver:
		return decodeAs[SwitchedOver](typ, data)
	case TypeFailed:
		return decodeAs[Failed](typ, data)
	case TypeCancelled:
		return decodeAs[Cancelled](typ, data)
	case TypeNotificationSent:
		return decodeAs[NotificationSent](typ, data)
	case TypeClusterRegistered:
		return decodeAs[ClusterRegistered](typ, data)
	case TypeClusterUpdated:
		return decodeAs[ClusterUpdated](typ, data)
	case TypeClusterLocked:
		return decodeAs[ClusterLocked](typ, data)
	case TypeClusterUnlocked:
		return decodeAs[ClusterUnlocked](typ, data)
	case TypeClusterClaimed:
		return decodeAs[ClusterClaimed](typ, data)
	case TypeClusterActivated:
		return decodeAs[ClusterActivated](typ, data)
	case TypeClusterReleased:
		return decodeAs[ClusterReleased](typ, data)
	case TypeClusterDeleted:
		return decodeAs[ClusterDeleted](typ, data)
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownEventType, typ)
}

func decodeAs[T Event](typ string, data []byte) (Event, error) {
	var e T
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("decode %s: %w", typ, err)
	}
	return e, nil
}
