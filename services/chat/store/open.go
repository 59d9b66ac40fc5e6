package store

import (
	"context"
	"fmt"
)

// Open connects to the database of driver (DriverSQLite or DriverPostgres),
// checks that it answers, applies the schema migrations it lacks and
// returns the store. The error never repeats the DSN, which may hold a
// password.
func Open(ctx context.Context, driver, dsn string) (Store, error) {
	switch driver {
	case DriverSQLite:
		return OpenSQLite(ctx, dsn)
	case DriverPostgres:
		return OpenPostgres(ctx, dsn)
	}
	return nil, fmt.Errorf("store: unknown driver %q: want %q or %q", driver, DriverSQLite, DriverPostgres)
}
