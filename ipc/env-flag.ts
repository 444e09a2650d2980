// On/off switches in the environment (VRIFT_DISABLE, VRIFT_DEBUG) take the booleans a config
// file takes (config/config.ts); native/util.c env_flag reads them the same way. A switch
// set to something else is on: whoever set it meant something.
const OFF = /^(0|false|no|off)$/i;

export function envFlag(value: string | undefined): boolean {
  return value !== undefined && value.trim() !== '' && !OFF.test(value.trim());
}
